/**
 * tsc's diagnostics (`--pretty false`), split into sdkit's and third-party declaration files'.
 * @module
 */

/** One `file(line,col): error TSnnnn: message` line. */
export interface TscError {
  readonly file: string;
  readonly code: string;
  readonly line: string;
}

/** The errors in tsc's output. */
export function parseTscErrors(output: string): TscError[] {
  const errors: TscError[] = [];
  for (const line of output.split('\n')) {
    const match = /^(.+?)\(\d+,\d+\): error (TS\d+):/.exec(line);
    if (match) errors.push({ file: match[1]!, code: match[2]!, line });
  }
  return errors;
}

/**
 * Whether `error` lies in a third-party package's declarations (under node_modules, not @sdkit/): something a
 * consumer with `skipLibCheck: false` meets through sdkit's dependencies, but not sdkit's to fix.
 */
export function isThirdParty(error: TscError): boolean {
  return /(^|\/)node_modules\//.test(error.file) && !/(^|\/)node_modules\/@sdkit\//.test(error.file);
}
