// The page's list: the sync engine's (or, before its first load, the last one this
// profile saw) with the outbox's pending edits on top. Same shape as TodoSync, so the
// page reads it as it reads the sync engine.
import type { SyncState } from './machine';
import { pendingEdits, type Outbox, type OutboxState } from './outbox';
import { overlay } from './overlay';
import type { TodoSync } from './sync';
import type { TodoState } from './todos';

const LOADING: readonly SyncState['phase'][] = ['loading', 'resyncing'];

export function showWithOutbox(
  sync: TodoSync,
  outbox: Outbox,
  stored: TodoState | null,
  save: (list: TodoState) => void,
  now: () => number = Date.now,
): TodoSync {
  let shown: SyncState | null = null;
  let from: [SyncState, OutboxState, number] | null = null;
  let saved = stored;
  // When the engine began loading the list on screen: it shows every edit settled before.
  let loading = now();
  let loadedSince = -Infinity;
  let phase = sync.getSnapshot().phase;

  // Subscribed before the page, so the page never reads a snapshot older than this.
  const follow = sync.subscribe(() => {
    const state = sync.getSnapshot();
    if (state.phase !== phase) {
      if (LOADING.includes(state.phase)) loading = now();
      else if (state.phase === 'live' && LOADING.includes(phase)) loadedSince = loading;
      phase = state.phase;
    }
    // Every list the engine shows is kept for an offline reload.
    if (state.list.cursor !== null && state.list !== saved) {
      saved = state.list;
      save(state.list);
    }
  });

  const getSnapshot = (): SyncState => {
    const state = sync.getSnapshot();
    const edits = outbox.getSnapshot();
    if (shown !== null && from?.[0] === state && from[1] === edits && from[2] === loadedSince) {
      return shown;
    }
    const list = state.list.cursor === null && stored !== null ? stored : state.list;
    const todos = overlay(list.todos, pendingEdits(edits, list.cursor, loadedSince));
    shown = { ...state, list: { ...list, todos } };
    from = [state, edits, loadedSince];
    return shown;
  };

  return {
    getSnapshot,
    subscribe(listener) {
      const offSync = sync.subscribe(listener);
      const offOutbox = outbox.subscribe(listener);
      return () => {
        offSync();
        offOutbox();
      };
    },
    stop() {
      follow();
      sync.stop();
      outbox.stop();
    },
  };
}
