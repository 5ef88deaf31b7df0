// What tells the list switcher at once that lists changed (AUTH=accounts): the `feed`
// subscription's list and member events. The page then reads `lists` again; a list the
// feed says was deleted is told as deleted, not as unshared.
import type { Client } from 'graphql-ws';
import { graphql } from './gql';
import type { FeedKind, ListFeedSubscription as ListFeedResult } from './gql/graphql';

export const ListFeedSubscription = graphql(`
  subscription ListFeed {
    feed {
      kind
      listId
      reason
    }
  }
`);

export type ListFeedEvent = ListFeedResult['feed'];

// Todo events reach the page through the sync; these are the ones about lists.
const LIST_KINDS: ReadonlySet<FeedKind> = new Set<FeedKind>([
  'LIST_ADDED',
  'LIST_UPDATED',
  'LIST_REMOVED',
  'MEMBER_ADDED',
  'MEMBER_UPDATED',
  'MEMBER_REMOVED',
]);

/** Whether an event changes what `lists` answers. */
export function aboutLists(event: ListFeedEvent): boolean {
  return LIST_KINDS.has(event.kind);
}

/**
 * The id of a list the event says was deleted by its owner, else null: its members'
 * removals say so (each member's own comes first), as does the list's removal.
 */
export function deletedList(event: ListFeedEvent): string | null {
  return event.reason === 'LIST_DELETED' ? (event.listId ?? null) : null;
}

/** Calls `onEvent` with each list or member event of the feed; returns the unsubscribe. */
export function followLists(
  client: Pick<Client, 'subscribe'>,
  onEvent: (event: ListFeedEvent) => void,
): () => void {
  return client.subscribe<ListFeedResult>(
    { query: ListFeedSubscription.toString() },
    {
      next: (result) => {
        const event = result.data?.feed;
        if (event && aboutLists(event)) onEvent(event);
      },
      // The socket reconnects by itself (main.tsx); the page reads `lists` when it does.
      error: (error) => console.warn('the list feed failed', error),
      complete: () => undefined,
    },
  );
}
