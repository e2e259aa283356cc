/**
 * A command run to its end as a plain child process, its output collected.
 * @module
 */
import { spawn } from 'node:child_process';

/** How a command ended. */
export interface CommandResult {
  /** The exit code; null when it was killed (by the timeout or a signal). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line, for messages. */
  readonly command: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  readonly cwd: string;
  /** The child's whole environment; default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** SIGKILL after this long; the result then has `code: null`. */
  readonly timeoutMs: number;
}

/** Runs `bin args…` and resolves once it exited; never rejects (a spawn failure is code null + stderr). */
export function runCommand(
  bin: string,
  args: readonly string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const command = [bin, ...args].join(' ');
  return new Promise((resolve) => {
    const child = spawn(bin, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${err.message}`, command });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, command });
    });
  });
}

/** The environment for npm or pnpm run from inside a pnpm script: without pnpm's `npm_*` settings. */
export function cleanPackageManagerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name)) env[name] = value;
  }
  return { ...env, NODE_OPTIONS: '', ...extra };
}

/** `result`'s command, exit and output, for an assertion message. */
export function describeResult(result: CommandResult): string {
  return `$ ${result.command}\nexit ${result.code}\n${result.stdout}\n${result.stderr}`.trim();
}
