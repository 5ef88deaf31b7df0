import { describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { aboutLists, deletedList, followLists, ListFeedSubscription, type ListFeedEvent } from './listFeed';

const event = (kind: ListFeedEvent['kind'], listId: string | null = 'L', reason: string | null = null) =>
  ({ kind, listId, reason }) as ListFeedEvent;

describe('the list feed', () => {
  it('keeps the list and member events, not the todo ones', () => {
    expect(aboutLists(event('MEMBER_REMOVED'))).toBe(true);
    expect(aboutLists(event('LIST_UPDATED'))).toBe(true);
    expect(aboutLists(event('TODO_CREATED'))).toBe(false);
    expect(aboutLists(event('TODO_REMOVED'))).toBe(false);
  });

  it('tells a deleted list from an unshared one', () => {
    expect(deletedList(event('LIST_REMOVED', 'L', 'LIST_DELETED'))).toBe('L');
    expect(deletedList(event('LIST_REMOVED', 'L'))).toBeNull();
    expect(deletedList(event('MEMBER_REMOVED', 'L', 'LIST_DELETED'))).toBe('L');
    expect(deletedList(event('MEMBER_REMOVED', 'L'))).toBeNull();
  });

  it('subscribes to the feed and passes on its list events only', () => {
    let sink: Parameters<Client['subscribe']>[1] | null = null;
    let query = '';
    const client = {
      subscribe: (payload, s) => {
        query = payload.query;
        sink = s;
        return () => undefined;
      },
    } as Pick<Client, 'subscribe'>;
    const seen: ListFeedEvent[] = [];
    followLists(client, (e) => seen.push(e));
    expect(query).toBe(ListFeedSubscription.toString());
    sink!.next({ data: { feed: event('TODO_UPDATED') } });
    sink!.next({ data: { feed: event('LIST_REMOVED', 'L', 'LIST_DELETED') } });
    expect(seen).toEqual([event('LIST_REMOVED', 'L', 'LIST_DELETED')]);
  });
});
