/**
 * The left sidebar (DOM id `nbsched-sidebar`): every job of the store grouped by notebook,
 * with its schedule in words, a live countdown to the next run, its last status, buttons
 * (`data-nbsched-action` = pause | resume | run | remove) and its run history.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  countdown,
  formatTime,
  groupByNotebook,
  jobState,
  span,
  statusText
} from '../format';
import { runNotebookPath } from '../drive';
import { SchedulerModel } from '../model';
import { IJob, IRun } from '../protocol';
import { clockIcon } from '../icon';

/** What the sidebar asks JupyterLab to do. */
export interface ISidebarActions {
  /** open a notebook (a path relative to the server's root, or on the runs drive) */
  open(path: string): void;
  /** show a message to the user */
  notify(kind: 'error' | 'success', message: string): void;
}

export const SIDEBAR_ID = 'nbsched-sidebar';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export class SchedulerSidebar extends Widget {
  constructor(
    readonly model: SchedulerModel,
    private readonly actions: ISidebarActions
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('nbsched-sidebar');
    this.title.icon = clockIcon;
    this.title.caption = 'Scheduled jobs (nbsched)';
    const header = el('header', 'nbsched-sidebar-header');
    header.append(el('h2', 'nbsched-sidebar-title', 'Scheduled jobs'));
    this._health = el('span', 'nbsched-health');
    const refresh = el('button', 'nbsched-icon-button', '⟳');
    refresh.title = 'Refresh';
    refresh.onclick = () => void model.refresh();
    header.append(this._health, refresh);
    this._body = el('div', 'nbsched-sidebar-body');
    this.node.append(header, this._body);
    model.changed.connect(this.render, this);
    this._ticker = setInterval(() => this.tick(), 1000);
    this.render();
  }

  dispose(): void {
    clearInterval(this._ticker);
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }

  /** Draw everything again from the model (after each refresh). */
  render(): void {
    const model = this.model;
    const status = model.status;
    this._health.className = 'nbsched-health';
    if (model.error) {
      this._health.textContent = 'offline';
      this._health.classList.add('nbsched-bad');
      this._health.title = model.error;
    } else if (status && !status.healthy) {
      this._health.textContent = 'fault';
      this._health.classList.add('nbsched-bad');
      this._health.title = status.error ?? '';
    } else {
      this._health.textContent = model.mode === 'live' ? 'live' : 'polling';
      this._health.classList.add('nbsched-good');
      this._health.title =
        model.mode === 'live'
          ? 'Updates arrive as they happen'
          : 'Refreshing every few seconds';
    }
    this._body.replaceChildren();
    if (model.error && !model.jobs.length) {
      this._body.append(
        el('p', 'nbsched-empty', `Cannot reach the scheduler: ${model.error}`)
      );
      return;
    }
    if (!model.jobs.length) {
      const empty = el('div', 'nbsched-empty');
      empty.append(
        el('p', '', 'No scheduled jobs yet.'),
        el(
          'p',
          '',
          'Right-click a notebook in the file browser and choose “Schedule…”, ' +
            'or use %schedule in a notebook.'
        )
      );
      this._body.append(empty);
      return;
    }
    for (const group of groupByNotebook(model.jobs)) {
      const section = el('section', 'nbsched-group');
      const title = el('button', 'nbsched-group-title', group.notebook);
      title.title = `Open ${group.notebook}`;
      if (group.notebook.endsWith('.ipynb')) {
        title.onclick = () => this.actions.open(group.notebook);
      } else {
        title.disabled = true;
      }
      section.append(title);
      for (const job of group.jobs) {
        section.append(this.renderJob(job));
      }
      this._body.append(section);
    }
    this.tick();
  }

  /** Update the countdowns (every second, without redrawing). */
  tick(): void {
    const now = Date.now();
    this.node
      .querySelectorAll<HTMLElement>('[data-nbsched-next]')
      .forEach(node => {
        const when = node.dataset.nbschedNext ?? '';
        node.textContent = countdown(when, now);
      });
  }

  private renderJob(job: IJob): HTMLElement {
    const state = jobState(job);
    const item = el('div', `nbsched-job nbsched-state-${state}`);
    item.dataset.nbschedJob = job.name;

    const top = el('div', 'nbsched-job-top');
    top.append(el('span', 'nbsched-job-name', job.name));
    top.append(el('span', `nbsched-badge nbsched-badge-${state}`, state));
    item.append(top);

    const schedule = el('div', 'nbsched-job-schedule', job.description);
    schedule.title = `${job.schedule}${job.timezone ? ` (${job.timezone})` : ''}`;
    item.append(schedule);

    const when = el('div', 'nbsched-job-when');
    if (job.next_run_time && !job.paused) {
      const next = el('span', 'nbsched-countdown');
      next.dataset.nbschedNext = job.next_run_time;
      next.title = formatTime(job.next_run_time);
      when.append(el('span', 'nbsched-label', 'Next '), next);
    } else {
      when.append(
        el('span', 'nbsched-label', job.paused ? 'Paused' : 'No next run')
      );
    }
    const last = job.last_run;
    if (last) {
      const status = el(
        'span',
        `nbsched-status nbsched-run-${last.status}`,
        statusText(last.status)
      );
      status.title = `${formatTime(last.finished_at ?? last.scheduled_for)}${
        last.error ? `\n${last.error}` : ''
      }`;
      when.append(el('span', 'nbsched-label', ' · Last '), status);
    }
    item.append(when);

    const buttons = el('div', 'nbsched-job-actions');
    const pauseAction = job.paused ? 'resume' : 'pause';
    buttons.append(
      this.button(pauseAction, job.paused ? 'Resume' : 'Pause', () =>
        this.model.api.setPaused(job.name, !job.paused)
      ),
      this.button('run', 'Run now', async () => {
        await this.model.api.runNow(job.name);
        this.actions.notify('success', `Started a run of ${job.name}`);
      }),
      this.button('remove', 'Remove', async () => {
        const answer = await showDialog({
          title: `Remove ${job.name}?`,
          body: 'The job and its run history are deleted.',
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: 'Remove' })
          ]
        });
        if (answer.button.accept) {
          await this.model.api.remove(job.name);
        }
      })
    );
    const historyToggle = el('button', 'nbsched-link-button', 'History');
    historyToggle.dataset.nbschedAction = 'history';
    const history = el('div', 'nbsched-history');
    history.hidden = !this._open.has(job.name);
    historyToggle.onclick = () => {
      history.hidden = !history.hidden;
      if (history.hidden) {
        this._open.delete(job.name);
      } else {
        this._open.add(job.name);
        void this.fillHistory(job, history);
      }
    };
    buttons.append(historyToggle);
    item.append(buttons, history);
    if (!history.hidden) {
      void this.fillHistory(job, history);
    }
    return item;
  }

  private button(
    action: string,
    label: string,
    act: () => Promise<unknown>
  ): HTMLElement {
    const button = el(
      'button',
      `nbsched-button nbsched-button-${action}`,
      label
    );
    button.dataset.nbschedAction = action;
    button.onclick = async () => {
      button.disabled = true;
      try {
        await act();
        await this.model.refresh();
      } catch (error) {
        this.actions.notify(
          'error',
          error instanceof Error ? error.message : String(error)
        );
      } finally {
        button.disabled = false;
      }
    };
    return button;
  }

  private async fillHistory(job: IJob, into: HTMLElement): Promise<void> {
    into.replaceChildren(el('div', 'nbsched-muted', 'Loading runs…'));
    let runs: IRun[];
    try {
      runs = await this.model.api.runs(job.name, 10);
    } catch (error) {
      into.replaceChildren(el('div', 'nbsched-bad', String(error)));
      return;
    }
    into.replaceChildren();
    if (!runs.length) {
      into.append(el('div', 'nbsched-muted', 'No runs yet.'));
    }
    for (const run of runs) {
      const row = el('div', 'nbsched-run');
      row.dataset.nbschedRun = run.id;
      row.append(
        el(
          'span',
          `nbsched-status nbsched-run-${run.status}`,
          statusText(run.status)
        ),
        el(
          'span',
          'nbsched-run-when',
          formatTime(run.started_at ?? run.scheduled_for)
        ),
        el(
          'span',
          'nbsched-muted',
          run.duration !== null ? span(run.duration) : ''
        )
      );
      const output = el('button', 'nbsched-link-button', 'Output');
      output.onclick = () => void showRunOutput(this.model, run.id);
      row.append(output);
      const notebook = runNotebookPath(run);
      if (notebook) {
        const open = el('button', 'nbsched-link-button', 'Open notebook');
        open.dataset.nbschedAction = 'open-notebook';
        open.title = run.output_path ?? notebook;
        open.onclick = () => this.actions.open(notebook);
        row.append(open);
      }
      into.append(row);
    }
  }

  private readonly _health: HTMLSpanElement;
  private readonly _body: HTMLDivElement;
  private readonly _ticker: ReturnType<typeof setInterval>;
  private readonly _open = new Set<string>();
}

/** A dialog with everything a run printed, and its error. */
export async function showRunOutput(
  model: SchedulerModel,
  runId: string
): Promise<void> {
  const run = await model.api.run(runId);
  const body = el('div', 'nbsched-output');
  body.append(
    el(
      'div',
      'nbsched-muted',
      `${statusText(run.status)} · ${formatTime(run.started_at ?? run.scheduled_for)}` +
        (run.duration !== null ? ` · ${span(run.duration)}` : '')
    ),
    el('pre', 'nbsched-output-text', run.output || '(no output)')
  );
  if (run.error) {
    body.append(el('pre', 'nbsched-output-error', run.error));
  }
  await showDialog({
    title: `Run of ${run.job_name}`,
    body: new Widget({ node: body }),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
