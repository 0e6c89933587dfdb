/**
 * The outbound guard (issue 10 item 6) lives in @gambit/shared/outbound so the scheduler's
 * webhook deliveries use the same dispatcher and checks as tool requests.
 */
export { addressRefusal, hostAllowed, OutboundGuard, type OutboundOptions, OutboundRefusedError, type OutboundResponse } from '@gambit/shared/outbound';
