/** sdkit's portable etcd entry, `@sdkit/sd-etcd/http`, inside a real deno process (see suite.ts). */
import { describeRuntime } from './suite.js';

describeRuntime('deno', 'sdkit');
// A canary for the runtime set-up itself: the same watch over plain fetch, without sdkit.
describeRuntime('deno', 'standin', { watchOnly: true });
