import { describe, expect, it } from 'vitest';
import { parseSsDuration } from './support/kernel';

describe('reading ss timers (the observer the tests rely on)', () => {
  it.each([
    ['1min29sec', 89],
    ['12sec', 12],
    ['628ms', 0.628],
    ['4.944ms', 4.944],
    ['2min', 120],
  ])('%s is %d s', (text, seconds) => {
    expect(parseSsDuration(text)).toBeCloseTo(seconds, 6);
  });
});
