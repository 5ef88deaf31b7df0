import { describe, expect, it } from 'vitest';
import { endpoints } from './api';
import { backoffMs } from './sync';

describe('endpoints', () => {
  it('derives same-origin http and ws URLs', () => {
    const location = new URL('http://127.0.0.1:8000/#/active') as unknown as Location;
    expect(endpoints(location)).toEqual({
      http: 'http://127.0.0.1:8000/graphql',
      ws: 'ws://127.0.0.1:8000/graphql',
    });
  });

  it('uses wss behind https', () => {
    const location = new URL('https://todos.example/') as unknown as Location;
    expect(endpoints(location).ws).toBe('wss://todos.example/graphql');
  });
});

describe('backoffMs', () => {
  it('grows exponentially and is capped', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const base = Math.min(5_000, 250 * 2 ** attempt);
      const wait = backoffMs(attempt);
      expect(wait).toBeGreaterThanOrEqual(base / 2);
      expect(wait).toBeLessThanOrEqual(base);
    }
  });
});
