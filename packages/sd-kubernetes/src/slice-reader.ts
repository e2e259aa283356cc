/**
 * How one instancer reads the EndpointSlice objects of its lists and watch events.
 * @internal
 * @module
 */
import type { Logger } from '@sdkit/sd-core';
import {
  type EndpointSlice,
  type ReadSliceOptions,
  readSlice,
  type SliceContribution,
} from './endpoint-slice.js';

/**
 * A reader of slices by `options` (see `readSlice`): one without a name is skipped (`undefined`) with a warning;
 * the reader warns once per address type it cannot use (FQDN: only IPv4 and IPv6 slices give instances).
 * `where` names the Service in the warnings.
 */
export function sliceReader(
  options: ReadSliceOptions,
  logger: Logger,
  where: string,
): (raw: EndpointSlice) => SliceContribution | undefined {
  const warnedAddressTypes = new Set<string>();
  return (raw) => {
    if (raw === null || typeof raw !== 'object' || typeof raw.metadata?.name !== 'string') {
      logger.warn({ service: where }, 'sdkit: an EndpointSlice without a name; ignored');
      return undefined;
    }
    const slice = readSlice(raw, options);
    const type = slice.addressType;
    if (type !== 'IPv4' && type !== 'IPv6' && !warnedAddressTypes.has(type)) {
      warnedAddressTypes.add(type);
      logger.warn(
        { service: where, slice: slice.name, addressType: type },
        `sdkit: ${where} has ${type === 'FQDN' ? 'FQDN' : `${JSON.stringify(type)}`} EndpointSlices; only IPv4 and IPv6 slices are used, these are skipped`,
      );
    }
    return slice;
  };
}
