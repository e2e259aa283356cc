import type { Balancer, EndpointSource } from './balancer.js';
import { assertEndpointSource, noEndpoints, readyOf } from './balancer.js';

/**
 * A {@link Balancer} that cycles through the endpoints in order (go-kit's `lb.NewRoundRobin`): the first pick is
 * the first endpoint, then the second, …, wrapping around after the last.
 *
 * It reads the source's set on every pick — `endpointer.snapshot()` when the source has it (sd-core's Endpointer
 * does), else `endpointer.endpoints()`; either is the same object until the set changes — and keeps only a
 * position, so it allocates nothing per pick. When the set changes between picks, the cycle goes on from the same
 * position in the new set (taken modulo its size when it shrank). Over k·n picks of an unchanging set of n
 * endpoints, each is picked exactly k times.
 *
 * Not shared between balancers: two round-robin balancers over one endpointer cycle independently.
 *
 * @throws TypeError if `endpointer` has no `endpoints()` method.
 */
export function roundRobin<Req, Res>(endpointer: EndpointSource<Req, Res>): Balancer<Req, Res> {
  assertEndpointSource(endpointer, 'roundRobin');
  let next = 0;
  if (typeof endpointer.snapshot === 'function') {
    const source = endpointer as EndpointSource<Req, Res> &
      Required<Pick<EndpointSource<Req, Res>, 'snapshot'>>;
    return {
      endpoint() {
        const snapshot = source.snapshot();
        const n = snapshot.length;
        if (n === 0) throw noEndpoints(source);
        let i = next;
        if (i >= n) i %= n;
        next = i + 1;
        return snapshot.endpointAt(i)!;
      },
      ...readyOf(endpointer),
    };
  }
  return {
    endpoint() {
      const endpoints = endpointer.endpoints();
      const n = endpoints.length;
      if (n === 0) throw noEndpoints(endpointer);
      let i = next;
      if (i >= n) i %= n;
      next = i + 1;
      return endpoints[i]!;
    },
    ...readyOf(endpointer),
  };
}
