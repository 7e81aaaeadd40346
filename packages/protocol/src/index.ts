/**
 * @tidesync/protocol: the tidesync wire protocol, shared by @tidesync/client and
 * @tidesync/server. A leaf: it depends on nothing. PROTOCOL.md describes the same protocol for
 * other languages.
 */
export type { ErrorCode, ErrorPolicy, WireError } from './errors.js'
export { ERROR_CODES, errorPolicy, isErrorCode } from './errors.js'
export type { ClientToServerEvents, RequestEvent, ServerToClientEvents, ServiceMethod } from './events.js'
export { CLIENT_EVENTS, isServiceMethod, KNOWN_EVENTS, REQUEST_EVENTS, SERVICE_METHODS } from './events.js'
export { HybridClock } from './hlc/clock.js'
export type { ParsedHlc } from './hlc/format.js'
export {
  compareHlc,
  formatHlc,
  hlcFromDate,
  hlcIso,
  hlcWallMs,
  isHlc,
  isNodeId,
  MAX_HLC_COUNTER,
  parseHlc,
  randomNodeId,
} from './hlc/format.js'
export type { LiveChange, LiveMessage } from './live-message.js'
export { isLiveMessage } from './live-message.js'
export type { Logger } from './logger.js'
export type {
  Change,
  ChangeOutcome,
  ChangesPush,
  ColumnarRecords,
  FullSyncRequest,
  FullSyncResult,
  PullFormat,
  PullRequest,
  PullResult,
  PushRequest,
  PushResult,
  Reply,
  ServiceRequest,
  SubscribeRequest,
  SubscribeResult,
  UnsubscribeRequest,
} from './messages.js'
export { PROTOCOL_VERSION } from './messages.js'
export type {
  ClientMeta,
  Hlc,
  IsoDate,
  JsonValue,
  RecordWithMeta,
  Tombstone,
  Uid,
  WireMeta,
  WireRecord,
} from './records.js'
export { canonicalJson } from './where/canonical.js'
export type { Comparable } from './where/comparison.js'
export { comparable, comparisonOf } from './where/comparison.js'
export type { RecordMatcher } from './where/match.js'
export { matchesConditions, whereMatcher } from './where/match.js'
export type { WhereSchema } from './where/parse.js'
export { parseWhere } from './where/parse.js'
export type { Comparison, Condition, RangeOp, Where, WhereValue } from './where/types.js'
export { MAX_IN_VALUES, RANGE_OPS } from './where/types.js'
