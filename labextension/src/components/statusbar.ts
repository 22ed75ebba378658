/**
 * The status bar item (DOM id `nbsched-status`): how many jobs, the next run, and failures
 * since the user last opened the sidebar. Clicking it opens the sidebar.
 */
import { Widget } from '@lumino/widgets';

import { countdown, nextRun } from '../format';
import { clockIcon } from '../icon';
import { SchedulerModel } from '../model';

export const STATUS_ID = 'nbsched-status';

export class SchedulerStatus extends Widget {
  constructor(
    private readonly model: SchedulerModel,
    onClick: () => void
  ) {
    super();
    this.id = STATUS_ID;
    this.addClass('nbsched-statusbar');
    this.node.title = 'Scheduled jobs: click to open';
    this.node.onclick = onClick;
    const icon = document.createElement('span');
    icon.className = 'nbsched-statusbar-icon';
    clockIcon.element({ container: icon });
    this._text = document.createElement('span');
    this.node.append(icon, this._text);
    model.changed.connect(this.render, this);
    this._ticker = setInterval(() => this.render(), 1000);
    this.render();
  }

  dispose(): void {
    clearInterval(this._ticker);
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }

  render(): void {
    const jobs = this.model.jobs;
    const parts = [`${jobs.length} job${jobs.length === 1 ? '' : 's'}`];
    const next = nextRun(jobs);
    if (next) {
      parts.push(
        `next ${next.name} ${countdown(next.next_run_time, Date.now())}`
      );
    }
    const failed = this.model.unseenFailures().length;
    this.node.classList.toggle('nbsched-status-failed', failed > 0);
    if (failed) {
      parts.push(`${failed} failed`);
    }
    if (this.model.error) {
      parts.push('offline');
    }
    this._text.textContent = parts.join(' · ');
  }

  private readonly _text: HTMLSpanElement;
  private readonly _ticker: ReturnType<typeof setInterval>;
}
