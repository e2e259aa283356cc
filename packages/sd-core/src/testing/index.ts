/**
 * @sdkit/sd-core/testing — hand-written test doubles for code built on sdkit: an instancer driven by hand
 * ({@link FakeInstancer}), a clock that moves only when told ({@link FakeClock}), and builders for instances.
 * @packageDocumentation
 */
export { processHolds } from '../hold-process.js';
export { FakeClock } from './fake-clock.js';
export { FakeInstancer } from './fake-instancer.js';
export { instance, instances } from './instances.js';
export { type Recording, record } from './record.js';
export { type LogRecord, type RecordingLogger, recordingLogger } from './recording-logger.js';
