/**
 * `@tidesync/ipc/testing`: the conformance suite every driver runs, and the pieces a driver's
 * tests need to run it (peers for the multi-process part, a runner for use outside vitest).
 */

export type { CaseContext, ContractCase } from './cases/index.js'
export { contractCases } from './cases/index.js'
export type { IpcContractOptions } from './contract.js'
export { runIpcContract } from './contract.js'
export type { ForkPeerOptions, IpcPeer, PeerProcess, PeerResult, PeerResults, PeerTask } from './peer.js'
export { connectPeer, forkPeer, inProcessPeers, PeerRuntime, servePeer } from './peer.js'
export type { ContractCaseResult, RunContractCasesOptions } from './session.js'
export { ContractSession, caseId, runContractCases } from './session.js'
