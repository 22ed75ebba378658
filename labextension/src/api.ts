/**
 * The REST client of the nbsched server extension (`{baseUrl}nbsched/api/...`), through
 * JupyterLab's ServerConnection: the server's token, cookie and XSRF handling apply.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IJob,
  INewJob,
  IPreview,
  IRun,
  IRunNotebook,
  ISchedulerAPI,
  IStatus
} from './protocol';

/** An answer other than 2xx: `status` and the server's one-line `message`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

export class SchedulerAPI implements ISchedulerAPI {
  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  readonly settings: ServerConnection.ISettings;

  /** The URL of an endpoint, `parts` percent-encoded. */
  url(...parts: string[]): string {
    return URLExt.join(
      this.settings.baseUrl,
      'nbsched',
      'api',
      ...parts.map(encodeURIComponent)
    );
  }

  /** The server-sent event stream (EventSource sends the cookie; the token when there is one). */
  eventsUrl(): string {
    const url = this.url('events');
    const token = this.settings.token;
    return token ? `${url}?token=${encodeURIComponent(token)}` : url;
  }

  async jobs(): Promise<IJob[]> {
    return (await this.request<{ jobs: IJob[] }>('GET', ['jobs'])).jobs;
  }

  status(): Promise<IStatus> {
    return this.request<IStatus>('GET', ['status']);
  }

  setPaused(name: string, paused: boolean): Promise<IJob> {
    return this.request<IJob>('PATCH', ['jobs', name], { paused });
  }

  async remove(name: string): Promise<void> {
    await this.request<void>('DELETE', ['jobs', name]);
  }

  async runNow(name: string): Promise<string> {
    const reply = await this.request<{ run_id: string }>('POST', [
      'jobs',
      name,
      'run'
    ]);
    return reply.run_id;
  }

  async runs(job: string, limit = 20): Promise<IRun[]> {
    const query = `?job=${encodeURIComponent(job)}&limit=${limit}`;
    return (
      await this.request<{ runs: IRun[] }>('GET', ['runs'], undefined, query)
    ).runs;
  }

  run(id: string): Promise<IRun> {
    return this.request<IRun>('GET', ['runs', id]);
  }

  /** A notebook run's executed notebook (wherever the server wrote it). */
  runNotebook(id: string): Promise<IRunNotebook> {
    return this.request<IRunNotebook>('GET', ['runs', id, 'notebook']);
  }

  async cancel(id: string): Promise<void> {
    await this.request<void>('POST', ['runs', id, 'cancel']);
  }

  addJob(job: INewJob): Promise<IJob> {
    return this.request<IJob>('POST', ['jobs'], job);
  }

  preview(schedule: string, timezone?: string): Promise<IPreview> {
    let query = `?schedule=${encodeURIComponent(schedule)}`;
    if (timezone) {
      query += `&timezone=${encodeURIComponent(timezone)}`;
    }
    return this.request<IPreview>('GET', ['preview'], undefined, query);
  }

  private async request<T>(
    method: string,
    parts: string[],
    body?: unknown,
    query = ''
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(...parts) + query,
        init,
        this.settings
      );
    } catch (error) {
      throw new ApiError(0, `The Jupyter server cannot be reached: ${error}`);
    }
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) {
      const message = data?.message ?? `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return data as T;
  }
}
