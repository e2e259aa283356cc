import { fileURLToPath } from 'node:url';

/** The workspace's root directory. */
export const workspaceRoot: string = fileURLToPath(new URL('../../../', import.meta.url));
