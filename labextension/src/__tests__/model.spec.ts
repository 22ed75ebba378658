import { IEventSourceLike, SchedulerModel } from '../model';
import {
  IJob,
  INewJob,
  IPreview,
  IRun,
  ISchedulerAPI,
  IStatus
} from '../protocol';
import { job, run } from './fixtures';

/** An API answering from memory, counting calls. */
class FakeAPI implements ISchedulerAPI {
  jobsList: IJob[] = [];
  calls = 0;
  fail: string | null = null;

  async jobs(): Promise<IJob[]> {
    this.calls += 1;
    if (this.fail) {
      throw new Error(this.fail);
    }
    return this.jobsList;
  }
  async status(): Promise<IStatus> {
    return { healthy: true, error: null, schedulers: [] };
  }
  async setPaused(name: string, paused: boolean): Promise<IJob> {
    const found = this.jobsList.find(j => j.name === name)!;
    found.paused = paused;
    return found;
  }
  async remove(): Promise<void> {}
  async runNow(): Promise<string> {
    return 'r1';
  }
  async runs(): Promise<IRun[]> {
    return [];
  }
  async run(id: string): Promise<IRun> {
    return run('failed', id);
  }
  async cancel(): Promise<void> {}
  async addJob(body: INewJob): Promise<IJob> {
    return job(body.name ?? 'x');
  }
  async preview(schedule: string): Promise<IPreview> {
    return { schedule, description: schedule, timezone: 'UTC', next: [] };
  }
}

/** An EventSource the test drives. */
class FakeStream implements IEventSourceLike {
  listeners = new Map<string, (event: MessageEvent) => void>();
  onerror: ((event: Event) => void) | null = null;
  readyState = 1;
  closed = false;
  addEventListener(
    type: string,
    listener: (event: MessageEvent) => void
  ): void {
    this.listeners.set(type, listener);
  }
  send(type: string, data: unknown): void {
    this.listeners.get(type)!({ data: JSON.stringify(data) } as MessageEvent);
  }
  close(): void {
    this.closed = true;
  }
}

describe('SchedulerModel', () => {
  let api: FakeAPI;
  let stream: FakeStream;
  let model: SchedulerModel;

  beforeEach(() => {
    api = new FakeAPI();
    stream = new FakeStream();
    model = new SchedulerModel(api, {
      eventsUrl: '/nbsched/api/events',
      openEvents: () => stream
    });
  });

  afterEach(() => model.dispose());

  it('loads jobs and tells its views', async () => {
    api.jobsList = [job('a')];
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    await model.refresh();
    expect(model.jobs.map(j => j.name)).toEqual(['a']);
    expect(model.status?.healthy).toBe(true);
    expect(changes).toBe(1);
  });

  it('shares one request between concurrent refreshes', async () => {
    await Promise.all([model.refresh(), model.refresh(), model.refresh()]);
    expect(api.calls).toBe(1);
  });

  it('keeps the error when the server cannot be reached', async () => {
    api.fail = 'The Jupyter server cannot be reached';
    await model.refresh();
    expect(model.error).toBe('The Jupyter server cannot be reached');
  });

  it('is live on the event stream and refreshes on events', async () => {
    model.connect();
    stream.send('hello', {});
    expect(model.mode).toBe('live');
    const before = api.calls;
    stream.send('job', { job_name: 'a', change: 'paused' });
    await model.refresh();
    expect(api.calls).toBeGreaterThan(before);
  });

  it('falls back to polling when the stream fails', () => {
    model.connect();
    stream.onerror!(new Event('error'));
    expect(model.mode).toBe('polling');
  });

  it('polls without an event stream', () => {
    const polling = new SchedulerModel(api);
    polling.connect();
    expect(polling.mode).toBe('polling');
    polling.dispose();
  });

  it('announces each failed run once', () => {
    model.connect();
    const failed: string[] = [];
    model.runFailed.connect((_, r) => failed.push(r.id));
    const bad = run('failed', '2026-12-07T09:00:00Z');
    stream.send('run-finished', { job_name: 'x', run: bad });
    stream.send('run-finished', { job_name: 'x', run: bad });
    stream.send('run-finished', {
      job_name: 'x',
      run: run('succeeded', '2026-12-07T09:00:00Z')
    });
    expect(failed).toEqual([bad.id]);
  });

  it('counts failures until the user looks', async () => {
    let now = Date.parse('2026-12-07T09:00:00Z');
    const clocked = new SchedulerModel(api, { now: () => now });
    api.jobsList = [
      job('a', { last_run: run('failed', '2026-12-07T09:10:00Z') })
    ];
    await clocked.refresh();
    expect(clocked.unseenFailures().map(j => j.name)).toEqual(['a']);
    now = Date.parse('2026-12-07T09:20:00Z');
    clocked.markSeen();
    expect(clocked.unseenFailures()).toEqual([]);
    clocked.dispose();
  });
});
