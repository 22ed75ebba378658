/**
 * The sidebar's and status bar's state, with no DOM: the jobs, the server's health, what the
 * user has already seen, and live updates (server-sent events; polling when they fail).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { failuresSince, FAILED } from './format';
import { IJob, IRun, ISchedulerAPI, IStatus } from './protocol';

/** Seconds between full refreshes while the event stream works (a safety net: the server
 * reports kernels' runs on the stream too, from the store). */
export const SLOW_POLL = 30;
/** Seconds between refreshes when there is no event stream. */
export const FAST_POLL = 5;

/** The subset of `EventSource` the model uses (tests pass a fake). */
export interface IEventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  onerror: ((event: Event) => void) | null;
  readonly readyState: number;
  close(): void;
}

export class SchedulerModel {
  constructor(
    readonly api: ISchedulerAPI,
    options: {
      eventsUrl?: string;
      openEvents?: (url: string) => IEventSourceLike;
      now?: () => number;
    } = {}
  ) {
    this._eventsUrl = options.eventsUrl;
    this._openEvents = options.openEvents;
    this._now = options.now ?? Date.now;
    this._seen = this._started = this._now();
  }

  /** Every job in the store, sorted by name. */
  get jobs(): ReadonlyArray<IJob> {
    return this._jobs;
  }

  /** The server's health, or null before the first answer. */
  get status(): IStatus | null {
    return this._status;
  }

  /** The last error talking to the server, or null. */
  get error(): string | null {
    return this._error;
  }

  /** "live" while the event stream is open, "polling" without it. */
  get mode(): 'live' | 'polling' {
    return this._mode;
  }

  /** Emitted after every refresh. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted once per run that failed while the page was open. */
  get runFailed(): ISignal<this, IRun> {
    return this._runFailed;
  }

  /** Jobs whose last run failed since the user last looked. */
  unseenFailures(): IJob[] {
    return failuresSince(this._jobs, this._seen);
  }

  /** The user looked at the sidebar: failures so far are seen. */
  markSeen(): void {
    this._seen = this._now();
    this._changed.emit();
  }

  /** Load jobs and status from the server. Concurrent calls share one request. */
  refresh(): Promise<void> {
    if (!this._pending) {
      this._pending = this._load().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  /** Start live updates: the event stream, or polling when it is not available. */
  connect(): void {
    if (this._eventsUrl && this._openEvents) {
      this._openStream(this._eventsUrl, this._openEvents);
    } else {
      this._setMode('polling');
    }
  }

  /** Handle one server-sent event (`name`, JSON `data`). */
  handleEvent(name: string, data: any): void {
    if (name === 'run-finished' && data?.run && FAILED.has(data.run.status)) {
      const run = data.run as IRun;
      if (!this._notified.has(run.id)) {
        this._notified.add(run.id);
        this._runFailed.emit(run);
      }
    }
    if (name !== 'hello') {
      void this.refresh();
    }
  }

  /** Stop the stream and the timers. */
  dispose(): void {
    this._stream?.close();
    this._stream = null;
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  private async _load(): Promise<void> {
    try {
      const [jobs, status] = await Promise.all([
        this.api.jobs(),
        this.api.status()
      ]);
      this._jobs = jobs;
      this._status = status;
      this._error = null;
      // Failures found by polling (no event) still notify, once each.
      for (const job of failuresSince(jobs, this._started)) {
        const run = job.last_run!;
        if (!this._notified.has(run.id)) {
          this._notified.add(run.id);
          this._runFailed.emit(run);
        }
      }
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    }
    this._changed.emit();
  }

  private _openStream(
    url: string,
    open: (url: string) => IEventSourceLike
  ): void {
    let stream: IEventSourceLike;
    try {
      stream = open(url);
    } catch {
      this._setMode('polling');
      return;
    }
    this._stream = stream;
    for (const name of [
      'hello',
      'job',
      'jobs-changed',
      'run-started',
      'run-finished',
      'status'
    ]) {
      stream.addEventListener(name, event => {
        let data: any = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          data = null;
        }
        if (name === 'hello') {
          this._setMode('live');
        }
        this.handleEvent(name, data);
      });
    }
    stream.onerror = () => {
      // EventSource reconnects by itself; poll meanwhile (and for good if it gave up).
      this._setMode('polling');
    };
    this._setMode('live');
  }

  private _setMode(mode: 'live' | 'polling'): void {
    if (mode === this._mode && this._timer !== null) {
      return;
    }
    this._mode = mode;
    if (this._timer !== null) {
      clearInterval(this._timer);
    }
    const seconds = mode === 'live' ? SLOW_POLL : FAST_POLL;
    this._timer = setInterval(() => void this.refresh(), seconds * 1000);
    this._changed.emit();
  }

  private _jobs: IJob[] = [];
  private _status: IStatus | null = null;
  private _error: string | null = null;
  private _pending: Promise<void> | null = null;
  private _mode: 'live' | 'polling' = 'polling';
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _stream: IEventSourceLike | null = null;
  private _seen: number;
  private readonly _started: number;
  private readonly _notified = new Set<string>();
  private readonly _now: () => number;
  private readonly _eventsUrl?: string;
  private readonly _openEvents?: (url: string) => IEventSourceLike;
  private readonly _changed = new Signal<this, void>(this);
  private readonly _runFailed = new Signal<this, IRun>(this);
}
