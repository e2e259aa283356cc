/** sdkit's portable etcd entry, `@sdkit/sd-etcd/http`, inside a real bun process (see suite.ts). */
import { describeRuntime } from './suite.js';

describeRuntime('bun', 'sdkit');
// A canary for the runtime set-up itself: the same watch over plain fetch, without sdkit.
describeRuntime('bun', 'standin', { watchOnly: true });
