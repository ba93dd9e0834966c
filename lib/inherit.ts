// Loaded first (`--require`) by a worker thread started while the parent thread had a default: the same default here.
import { getEnvironmentData } from 'node:worker_threads';
import { WORKER_DEFAULT } from './hooks';
import { filterFrom, KeepaliveFilterSpec } from './filter';
import { KeepaliveOptions, setDefaultKeepalive } from './index';

const carried = getEnvironmentData(WORKER_DEFAULT) as { options: KeepaliveOptions; spec?: KeepaliveFilterSpec } | undefined;
if (carried) {
  try {
    setDefaultKeepalive(carried.options, carried.spec ? { filter: filterFrom(carried.spec) } : {});
  } catch (error) {
    process.emitWarning(`setDefaultKeepalive could not be carried into this worker thread: ${(error as Error).message}`, { type: 'TcpKeepaliveWarning', code: 'TCP_KEEPALIVE_DEFAULT_FAILED' });
  }
}
