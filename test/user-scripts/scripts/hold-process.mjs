// holdUntilSettled: a promise that settles on an unref'd timer (as sdkit's background timers are) keeps the
// process alive only when held. `node hold-process.mjs held` prints "settled" and exits 0; `... unheld` is the
// control: Node exits with code 13 in the middle of the await, printing nothing.
import { holdUntilSettled } from '@sdkit/sd-core';

const unrefd = new Promise((resolve) => setTimeout(resolve, 200).unref());
await (process.argv[2] === 'held' ? holdUntilSettled(unrefd) : unrefd);
console.log('settled');
