/**
 * Pure helpers of the views: countdowns, grouping, statuses, schedule presets, parameters.
 * No DOM and no server: unit-tested on their own.
 */
import { IJob, RunStatus } from './protocol';

/** Statuses that count as failures (a notification, the status bar's count). */
export const FAILED: ReadonlySet<RunStatus> = new Set<RunStatus>([
  'failed',
  'timed_out',
  'crashed'
]);

/** Schedules offered in the dialog; the text field takes any schedule nbsched understands. */
export const PRESETS: ReadonlyArray<{ label: string; schedule: string }> = [
  { label: 'Every hour', schedule: 'every 1h' },
  { label: 'Every day at 09:00', schedule: 'every day at 9:00' },
  { label: 'Every weekday at 09:00', schedule: 'every weekday at 9:00' },
  { label: 'Every Monday at 08:00', schedule: 'every monday at 8:00' },
  { label: 'Every 15 minutes', schedule: '*/15 * * * *' },
  { label: 'First day of the month, 06:00', schedule: '0 6 1 * *' }
];

/** "in 2h 05m", "in 42s", "due now", or "" when there is no next run. */
export function countdown(when: string | null, now: number): string {
  if (!when) {
    return '';
  }
  const seconds = Math.round((Date.parse(when) - now) / 1000);
  if (seconds <= 0) {
    return 'due now';
  }
  return `in ${span(seconds)}`;
}

/** A duration in the two largest units: "3d 4h", "2h 05m", "7m 03s", "42s". */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (d > 0) {
    return `${d}d ${h}h`;
  }
  if (h > 0) {
    return `${h}h ${two(m)}m`;
  }
  if (m > 0) {
    return `${m}m ${two(sec)}s`;
  }
  return `${sec}s`;
}

/** The notebook a job belongs to, for grouping: its notebook, or its kernel's notebook. */
export function notebookOf(job: IJob): string {
  return job.lab_path || job.owner || 'Outside notebooks';
}

/** Jobs grouped by notebook, groups and jobs sorted by name. */
export function groupByNotebook(
  jobs: ReadonlyArray<IJob>
): { notebook: string; jobs: IJob[] }[] {
  const groups = new Map<string, IJob[]>();
  for (const job of jobs) {
    const key = notebookOf(job);
    const list = groups.get(key) ?? [];
    list.push(job);
    groups.set(key, list);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([notebook, list]) => ({
      notebook,
      jobs: list.sort((a, b) => a.name.localeCompare(b.name))
    }));
}

/** The state a job is in, as the sidebar shows it. */
export function jobState(
  job: IJob
): 'paused' | 'unbound' | 'running' | 'finished' | 'active' {
  if (job.unbound) {
    return 'unbound';
  }
  if (job.paused) {
    return 'paused';
  }
  if (job.last_run?.status === 'running') {
    return 'running';
  }
  if (!job.next_run_time) {
    return 'finished';
  }
  return 'active';
}

/** The soonest next run of jobs that are not paused, or null. */
export function nextRun(jobs: ReadonlyArray<IJob>): IJob | null {
  let best: IJob | null = null;
  for (const job of jobs) {
    if (!job.paused && job.next_run_time) {
      if (
        !best ||
        Date.parse(job.next_run_time) < Date.parse(best.next_run_time!)
      ) {
        best = job;
      }
    }
  }
  return best;
}

/** Jobs whose last run failed after `since` (ms since the epoch). */
export function failuresSince(
  jobs: ReadonlyArray<IJob>,
  since: number
): IJob[] {
  return jobs.filter(job => {
    const run = job.last_run;
    if (!run || !FAILED.has(run.status)) {
      return false;
    }
    const at = Date.parse(run.finished_at ?? run.scheduled_for);
    return at > since;
  });
}

/** A status in words ("timed out"). */
export function statusText(status: RunStatus): string {
  return status.replace('_', ' ');
}

/**
 * Papermill-style parameters from lines of `name = value`: values are JSON when they parse
 * as JSON (numbers, true, "quoted", [lists]), else the text as a string.
 *
 * @throws Error naming the line that is not `name = value` or whose name is not an identifier
 */
export function parseParameters(text: string): { [key: string]: unknown } {
  const result: { [key: string]: unknown } = {};
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      return;
    }
    const eq = line.indexOf('=');
    const name = eq < 0 ? '' : line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new Error(
        `Line ${index + 1}: write parameters as name = value (got "${line}")`
      );
    }
    const value = line.slice(eq + 1).trim();
    try {
      result[name] = JSON.parse(value);
    } catch {
      result[name] = value;
    }
  });
  return result;
}

/** A name for a notebook's job: the file name without folder and extension. */
export function defaultJobName(path: string): string {
  const file = path.split('/').pop() ?? path;
  return file.replace(/\.ipynb$/, '');
}

/** The time zones the browser knows, the local one first. */
export function timeZones(): string[] {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  let all: string[] = [];
  const intl = Intl as unknown as {
    supportedValuesOf?: (key: string) => string[];
  };
  if (intl.supportedValuesOf) {
    all = intl.supportedValuesOf('timeZone');
  }
  return [local, ...all.filter(zone => zone !== local)];
}

/** A fire time as the user reads it: "Mon 7 Dec, 09:00" in the browser's locale (with
 * seconds when asked: schedules that fire more than once a minute). */
export function formatTime(iso: string | null, seconds = false): string {
  if (!iso) {
    return '—';
  }
  return new Date(iso).toLocaleString(undefined, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    second: seconds ? '2-digit' : undefined
  });
}

/** Whether fire times need their seconds to tell them apart. */
export function needsSeconds(times: ReadonlyArray<string>): boolean {
  return times.some(time => new Date(time).getSeconds() !== 0);
}
