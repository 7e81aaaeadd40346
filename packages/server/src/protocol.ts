/**
 * `@tidesync/server/protocol`: the wire protocol, kept at this path for existing imports. It is
 * the package `@tidesync/protocol` (types, error codes with their policy, the HLC, the where
 * language), which the server and the client both depend on; import that in new code.
 */
export * from '@tidesync/protocol'
