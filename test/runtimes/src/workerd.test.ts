/** sdkit's portable etcd entry, `@sdkit/sd-etcd/http`, inside a real workerd (see suite.ts). */
import { describeRuntime } from './suite.js';

describeRuntime('workerd', 'sdkit');
// A canary for the runtime set-up itself: the same watch over plain fetch, without sdkit.
describeRuntime('workerd', 'standin', { watchOnly: true });
