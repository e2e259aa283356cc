import type { Balancer, EndpointSource } from './balancer.js';
import { cheaper } from './call-meter.js';
import { checkedDraw, type P2cOptions, twoChoices } from './p2c.js';

/** Options of {@link peakEwma}: the meter that measured the endpoints (its decay time and default latency apply). */
export type PeakEwmaOptions = P2cOptions;

/**
 * Finagle's and Linkerd's default: power of two choices over a peak-sensitive latency average. Each pick draws two
 * distinct endpoints at random and takes the one of lower cost, `latency × (in flight + 1)` (see
 * `EndpointLoad.cost`): an endpoint that answers slowly, or has many calls waiting, gets few new calls, and gets
 * them back as its average decays (`CallMeter`'s `decayMs`, default 10 s). A new endpoint starts at the meter's
 * `defaultLatencyMs` (30 ms), neither shunned nor flooded.
 *
 * Costs come from the `meter` that measured the endpoints (`endpointer(instancer, meter.measure(factory))`); an
 * endpoint it did not measure costs the default latency. Allocates nothing per pick; reads the meter's clock only
 * while one of the two drawn endpoints has not answered yet.
 *
 * @throws TypeError if `endpointer` has no `endpoints()`, `meter` is not a CallMeter, or `seed` is invalid.
 */
export function peakEwma<Req, Res>(
  endpointer: EndpointSource<Req, Res>,
  options: PeakEwmaOptions,
): Balancer<Req, Res> {
  const draw = checkedDraw('peakEwma', endpointer, options);
  const { meter } = options;
  const clock = meter.clock;
  const fallback = meter.defaultLatencyMs;
  return twoChoices(endpointer, draw, (a, b) => cheaper(a, b, clock, fallback));
}
