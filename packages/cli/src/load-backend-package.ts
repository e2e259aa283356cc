import { CliError } from './cli-error.js';

/**
 * Runs `load` (a dynamic `import()` of a backend's package entry) and returns the module. When the package
 * itself is not installed, throws a `'missing-backend'` {@link CliError} saying which package `scheme://`
 * targets need and how to install it; any other failure (a broken install) is rethrown as it is.
 */
export async function loadBackendPackage<T>(
  packageName: string,
  scheme: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      typeof message === 'string' &&
      message.includes(`'${packageName}'`)
    ) {
      throw new CliError(
        'missing-backend',
        `${scheme}:// targets need the package ${packageName}, which is not installed: npm install ${packageName}`,
        { cause: err },
      );
    }
    throw err;
  }
}
