import { IJob, IRun } from '../protocol';

/** A job as the server answers it, with `changes`. */
export function job(name: string, changes: Partial<IJob> = {}): IJob {
  return {
    name,
    owner: null,
    kind: 'function',
    target: 'pkg.mod:func',
    schedule: 'every 1h',
    description: 'Every hour',
    timezone: 'UTC',
    next_run_time: '2026-12-07T10:00:00+00:00',
    paused: false,
    unbound: false,
    executor: 'thread',
    last_run: null,
    ...changes
  };
}

/** A finished run. */
export function run(status: IRun['status'], finished: string): IRun {
  return {
    id: `r-${status}-${finished}`,
    job_name: 'x',
    status,
    scheduled_for: finished,
    started_at: finished,
    finished_at: finished,
    duration: 1,
    error: null,
    output_path: null
  };
}
