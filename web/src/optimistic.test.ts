import { describe, expect, it } from 'vitest';
import { latestSender } from './optimistic';

// A transport whose sends stay in flight until the test answers them, in order.
function heldTransport() {
  const sent: boolean[] = [];
  const answers: ((ok: boolean) => void)[] = [];
  const transport = (value: boolean) => {
    sent.push(value);
    return new Promise<boolean>((resolve) => answers.push(resolve));
  };
  const answer = async (ok: boolean) => {
    answers.shift()!(ok);
    // Let the sender's loop see the answer and maybe send the next value.
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { transport, sent, answer };
}

describe('latestSender', () => {
  it('sends a value asked for while another is in flight once that one is done', async () => {
    const { transport, sent, answer } = heldTransport();
    const sender = latestSender<boolean>();
    const first = sender.send(true, transport);
    const second = sender.send(false, transport);
    expect(sent).toEqual([true]);
    expect(sender.busy()).toBe(true);
    await answer(true);
    expect(sent).toEqual([true, false]);
    await answer(true);
    expect(await first).toBe(true);
    expect(await second).toBeNull();
    expect(sender.busy()).toBe(false);
  });

  it('skips values overtaken while a send was in flight', async () => {
    const { transport, sent, answer } = heldTransport();
    const sender = latestSender<boolean>();
    const first = sender.send(true, transport);
    void sender.send(false, transport);
    void sender.send(true, transport);
    await answer(true);
    // The server already has `true`, the last value asked for.
    expect(await first).toBe(true);
    expect(sent).toEqual([true]);
  });

  it('stops at a failed send and reports it', async () => {
    const { transport, sent, answer } = heldTransport();
    const sender = latestSender<boolean>();
    const first = sender.send(true, transport);
    void sender.send(false, transport);
    await answer(false);
    expect(await first).toBe(false);
    expect(sent).toEqual([true]);
    expect(sender.busy()).toBe(false);
  });
});
