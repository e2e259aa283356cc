/**
 * @sdkit/lb — load balancers over an sdkit Endpointer (round-robin, random) and `retry`, which turns a balancer
 * into one Endpoint that retries on other instances, with backoff (from p-retry), per-attempt and overall
 * timeouts, and abort, keeping every attempt's error.
 * @packageDocumentation
 */
export type { Balancer, EndpointSource, PickContext } from './balancer.js';
export {
  NoEndpointsError,
  RetryError,
  type RetryErrorInit,
  type RetryGiveUpReason,
  TimeoutError,
} from './errors.js';
export { type RandomOptions, random } from './random.js';
export { type BackoffOptions, type RetryInfo, type RetryOptions, retry } from './retry.js';
export { roundRobin } from './round-robin.js';
