import {
  countdown,
  defaultJobName,
  failuresSince,
  groupByNotebook,
  jobState,
  needsSeconds,
  nextRun,
  parseParameters,
  span
} from '../format';
import { job, run } from './fixtures';

describe('span and countdown', () => {
  it('shows the two largest units', () => {
    expect(span(42)).toBe('42s');
    expect(span(7 * 60 + 3)).toBe('7m 03s');
    expect(span(2 * 3600 + 5 * 60 + 59)).toBe('2h 05m');
    expect(span(3 * 86400 + 4 * 3600)).toBe('3d 4h');
  });

  it('counts down to the next run', () => {
    const now = Date.parse('2026-12-07T09:00:00Z');
    expect(countdown('2026-12-07T09:00:42Z', now)).toBe('in 42s');
    expect(countdown('2026-12-07T08:59:00Z', now)).toBe('due now');
    expect(countdown(null, now)).toBe('');
  });
});

describe('groupByNotebook', () => {
  it('groups by notebook, then owner, names sorted', () => {
    const groups = groupByNotebook([
      job('b', { kind: 'notebook', lab_path: 'reports/daily.ipynb' }),
      job('z', { kind: 'cell', owner: 'work/a.ipynb' }),
      job('a', { kind: 'notebook', lab_path: 'reports/daily.ipynb' }),
      job('m')
    ]);
    expect(groups.map(g => g.notebook)).toEqual([
      'Outside notebooks',
      'reports/daily.ipynb',
      'work/a.ipynb'
    ]);
    expect(groups[1].jobs.map(j => j.name)).toEqual(['a', 'b']);
  });
});

describe('job states', () => {
  it('says what a job is doing', () => {
    expect(jobState(job('a'))).toBe('active');
    expect(jobState(job('a', { paused: true }))).toBe('paused');
    expect(jobState(job('a', { unbound: true, paused: true }))).toBe('unbound');
    expect(jobState(job('a', { next_run_time: null }))).toBe('finished');
    expect(
      jobState(job('a', { last_run: run('running', '2026-12-07T09:00:00Z') }))
    ).toBe('running');
  });

  it('finds the soonest next run of jobs that are not paused', () => {
    const soon = job('soon', { next_run_time: '2026-12-07T09:05:00Z' });
    const jobs = [
      job('later', { next_run_time: '2026-12-07T11:00:00Z' }),
      job('paused', { paused: true, next_run_time: '2026-12-07T09:01:00Z' }),
      soon
    ];
    expect(nextRun(jobs)).toBe(soon);
    expect(nextRun([job('p', { paused: true })])).toBeNull();
  });

  it('counts failures after the last look only', () => {
    const since = Date.parse('2026-12-07T09:00:00Z');
    const jobs = [
      job('old', { last_run: run('failed', '2026-12-07T08:00:00Z') }),
      job('new', { last_run: run('timed_out', '2026-12-07T09:30:00Z') }),
      job('ok', { last_run: run('succeeded', '2026-12-07T09:30:00Z') })
    ];
    expect(failuresSince(jobs, since).map(j => j.name)).toEqual(['new']);
  });
});

describe('parseParameters', () => {
  it('reads JSON values, else text', () => {
    expect(
      parseParameters(
        'region = "emea"\ndays=7\n\n# note\nflag = true\nword = hello world'
      )
    ).toEqual({ region: 'emea', days: 7, flag: true, word: 'hello world' });
  });

  it('names the bad line', () => {
    expect(() => parseParameters('ok = 1\nnot a parameter')).toThrow(/Line 2/);
    expect(() => parseParameters('1x = 2')).toThrow(/name = value/);
  });
});

describe('defaultJobName', () => {
  it('is the notebook file name without its extension', () => {
    expect(defaultJobName('reports/daily.ipynb')).toBe('daily');
  });
});

describe('needsSeconds', () => {
  it('is true only when a time is not on the minute', () => {
    expect(needsSeconds(['2026-12-07T09:00:00Z', '2026-12-07T09:01:00Z'])).toBe(
      false
    );
    expect(needsSeconds(['2026-12-07T09:00:00Z', '2026-12-07T09:00:10Z'])).toBe(
      true
    );
  });
});
