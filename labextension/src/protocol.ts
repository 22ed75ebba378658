/**
 * The JSON the nbsched server extension answers with (its OpenAPI description,
 * `nbsched/api/openapi.json`, is the reference; these types mirror it).
 */

export type RunStatus =
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'missed'
  | 'skipped'
  | 'cancelled'
  | 'crashed';

/** One execution of a job. */
export interface IRun {
  id: string;
  job_name: string;
  status: RunStatus;
  scheduled_for: string;
  started_at: string | null;
  finished_at: string | null;
  duration: number | null;
  error: string | null;
  /** the executed notebook of a notebook run (a path on the server) */
  output_path: string | null;
  /** `output_path` relative to the server's root, when JupyterLab can open it */
  output_lab_path?: string | null;
  attempt?: number;
  /** everything the run printed (only from `runs/{id}`) */
  output?: string;
}

/** The answer of `GET runs/{id}/notebook`: a notebook run's executed notebook. */
export interface IRunNotebook {
  /** the file name */
  name: string;
  run_id: string;
  job_name: string;
  last_modified: string;
  /** the notebook (nbformat 4 JSON) */
  content: { [key: string]: unknown };
}

/** A job: what runs, and when. */
export interface IJob {
  name: string;
  /** the notebook whose kernel runs it; null for jobs made outside a kernel */
  owner: string | null;
  kind: 'cell' | 'function' | 'notebook';
  target: string;
  schedule: string;
  /** the schedule in words */
  description: string;
  timezone: string | null;
  next_run_time: string | null;
  paused: boolean;
  unbound: boolean;
  executor: string;
  parameters?: { [key: string]: unknown };
  timeout?: number | null;
  /** the notebook to open for this job, relative to the server's root */
  lab_path?: string | null;
  last_run: IRun | null;
}

/** The body of `POST jobs`. */
export interface INewJob {
  notebook: string;
  schedule: string;
  name?: string;
  parameters?: { [key: string]: unknown };
  timezone?: string;
  timeout?: number;
}

/** The answer of `GET preview`. */
export interface IPreview {
  schedule: string;
  description: string;
  timezone: string;
  next: string[];
}

/** The answer of `GET status`. */
export interface IStatus {
  healthy: boolean;
  error: string | null;
  schedulers: { [key: string]: unknown }[];
}

/** What the REST client offers (the model takes any implementation: tests pass a fake). */
export interface ISchedulerAPI {
  jobs(): Promise<IJob[]>;
  status(): Promise<IStatus>;
  setPaused(name: string, paused: boolean): Promise<IJob>;
  remove(name: string): Promise<void>;
  runNow(name: string): Promise<string>;
  runs(job: string, limit?: number): Promise<IRun[]>;
  run(id: string): Promise<IRun>;
  cancel(id: string): Promise<void>;
  addJob(job: INewJob): Promise<IJob>;
  preview(schedule: string, timezone?: string): Promise<IPreview>;
}
