import { describe, expect, it } from 'vitest';
import { heapShortfall } from '../../src/ops/heapRoom.js';

const MB = 2 ** 20;

describe('heapShortfall', () => {
  it('is silent when the image heap limit (152 MB) holds the default max_pending_contacts', () => {
    expect(heapShortfall(20_000, 152 * MB)).toBeUndefined();
  });

  it('says how much heap a larger max_pending_contacts needs and what the limit is', () => {
    expect(heapShortfall(50_000, 152 * MB)).toEqual({ liveMb: 99, neededMb: 198, limitMb: 152 });
  });

  it('is silent on an unlimited heap (a host without NODE_OPTIONS)', () => {
    expect(heapShortfall(200_000, 4144 * MB)).toBeUndefined();
  });
});
