/**
 * A peer process for the contract's multi-process part: its own RedisIpc (its own connections)
 * on the test run's Redis and key prefix, serving the tasks the test process sends.
 */
import { createIpc } from '../../../index.js'
import { servePeer } from '../../../testing/peer.js'

await servePeer(() =>
  createIpc({
    driver: 'redis',
    url: process.env.TIDESYNC_TEST_REDIS_URL,
    keyPrefix: process.env.TIDESYNC_TEST_KEY_PREFIX,
  }),
)
