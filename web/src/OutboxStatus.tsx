import { useSyncExternalStore } from 'react';
import { notices, type ListFate, type Outbox } from './outbox';
import { pluralize } from './todos';

/** How many edits wait to be sent, and each rejection's notice until dismissed. */
export function OutboxStatus({ outbox, listFate }: { outbox: Outbox; listFate?: ListFate }) {
  const state = useSyncExternalStore(outbox.subscribe, outbox.getSnapshot);
  const waiting = state.queued.length;
  return (
    <>
      {waiting > 0 && (
        <div className="outbox-count" role="status" data-count={waiting}>
          {waiting} {pluralize(waiting, 'change')} waiting
        </div>
      )}
      {notices(state, listFate).map((notice) => (
        <div key={notice.seq} className="error-banner rejection" role="alert">
          <span>{notice.text}</span>
          <button
            type="button"
            className="error-dismiss"
            aria-label="Dismiss"
            // Keep focus where it is: blurring an open editor would save it again.
            onMouseDown={(e) => e.preventDefault()}
            onClick={() => void outbox.dismiss(notice.seq)}
          >
            ×
          </button>
        </div>
      ))}
    </>
  );
}
