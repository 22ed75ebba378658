/**
 * nbsched's JupyterLab extension: registers the commands, the sidebar, the status bar item,
 * "Schedule…" on notebooks (file browser context menu, notebook toolbar) and the failure
 * notifications. The views are in `components/`, the state in `model.ts`.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  Notification,
  showDialog,
  ToolbarButton
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { SchedulerAPI } from './api';
import { IFormState, ScheduleForm } from './components/dialog';
import {
  SchedulerSidebar,
  showRunOutput,
  SIDEBAR_ID
} from './components/sidebar';
import { SchedulerStatus, STATUS_ID } from './components/statusbar';
import { RUNS_DRIVE, RunsDrive, runNotebookPath } from './drive';
import { clockIcon } from './icon';
import { SchedulerModel } from './model';
import { IRun } from './protocol';

export const OPEN = 'nbsched:open';
export const SCHEDULE = 'nbsched:schedule';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbsched:plugin',
  description:
    'Every schedule of the user in a sidebar, and "Schedule…" for notebooks',
  autoStart: true,
  optional: [
    ILabShell,
    IStatusBar,
    IDefaultFileBrowser,
    INotebookTracker,
    ICommandPalette
  ],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    statusBar: IStatusBar | null,
    browser: IDefaultFileBrowser | null,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null
  ) => {
    const api = new SchedulerAPI();
    // executed notebooks outside the server's root open from here, read-only
    app.serviceManager.contents.addDrive(new RunsDrive(api));
    const model = new SchedulerModel(api, {
      eventsUrl: api.eventsUrl(),
      openEvents:
        typeof EventSource === 'undefined'
          ? undefined
          : url => new EventSource(url, { withCredentials: true })
    });
    const open = (path: string) =>
      void app.commands.execute('docmanager:open', { path });
    const sidebar = new SchedulerSidebar(model, {
      open,
      notify: (kind, message) =>
        kind === 'error'
          ? Notification.error(message)
          : Notification.success(message, { autoClose: 3000 })
    });
    app.shell.add(sidebar, 'left', { rank: 650 });

    labShell?.currentChanged.connect(() => {
      if (sidebar.isVisible) {
        model.markSeen();
      }
    });

    app.commands.addCommand(OPEN, {
      label: 'Open the scheduled jobs sidebar',
      caption: 'Every scheduled job, grouped by notebook',
      icon: clockIcon,
      execute: () => {
        app.shell.activateById(SIDEBAR_ID);
        model.markSeen();
        return model.refresh();
      }
    });

    const selectedNotebook = (): string | null => {
      if (browser) {
        for (const item of browser.selectedItems()) {
          if (item.type === 'notebook') {
            return item.path;
          }
        }
      }
      return notebooks?.currentWidget?.context.path ?? null;
    };

    app.commands.addCommand(SCHEDULE, {
      label: 'Schedule…',
      caption: 'Run this notebook on a schedule',
      icon: clockIcon,
      execute: async args => {
        const path = (args.path as string | undefined) ?? selectedNotebook();
        if (!path) {
          Notification.warning('Select a notebook to schedule first.');
          return;
        }
        await scheduleNotebook(path);
      }
    });

    const scheduleNotebook = async (path: string): Promise<void> => {
      let state: IFormState | undefined;
      for (;;) {
        const form = new ScheduleForm(api, path, state);
        const answer = await showDialog({
          title: 'Schedule notebook',
          body: form,
          focusNodeSelector: '.nbsched-input-schedule',
          buttons: [
            Dialog.cancelButton(),
            Dialog.okButton({ label: 'Schedule' })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        state = form.state();
        try {
          const job = await api.addJob(form.getValue());
          Notification.success(`Scheduled ${job.name}: ${job.description}`, {
            autoClose: 5000,
            actions: [
              { label: 'Show', callback: () => void app.commands.execute(OPEN) }
            ]
          });
          await model.refresh();
          return;
        } catch (error) {
          Notification.error(
            `Not scheduled: ${error instanceof Error ? error.message : String(error)}`,
            { autoClose: 8000 }
          );
        }
      }
    };

    app.contextMenu.addItem({
      command: SCHEDULE,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 20
    });

    notebooks?.widgetAdded.connect((_, panel) => {
      if (panel.context.path.startsWith(`${RUNS_DRIVE}:`)) {
        // An executed notebook of a run, read-only: nothing to schedule, and nothing to
        // run it in. Set before the context loads (this signal comes as the widget is
        // made), so no kernel is started for it: "No Kernel", and none left behind.
        const session = panel.sessionContext;
        session.kernelPreference = {
          ...session.kernelPreference,
          shouldStart: false,
          canStart: false
        };
        return;
      }
      const button = new ToolbarButton({
        className: 'nbsched-toolbar-schedule',
        icon: clockIcon,
        label: 'Schedule…',
        tooltip: 'Run this notebook on a schedule',
        onClick: () =>
          void app.commands.execute(SCHEDULE, { path: panel.context.path })
      });
      panel.toolbar.insertAfter('cellType', 'nbsched-schedule', button);
    });

    if (statusBar) {
      const item = new SchedulerStatus(
        model,
        () => void app.commands.execute(OPEN)
      );
      statusBar.registerStatusItem(STATUS_ID, {
        item,
        align: 'left',
        rank: 50
      });
    }

    palette?.addItem({ command: OPEN, category: 'Scheduler' });

    model.runFailed.connect((_, run: IRun) => {
      Notification.error(
        `Scheduled run of ${run.job_name} ${run.status.replace('_', ' ')}`,
        {
          autoClose: false,
          actions: [
            {
              label: 'Open output',
              callback: () => {
                const notebook = runNotebookPath(run);
                if (notebook) {
                  open(notebook);
                } else {
                  void showRunOutput(model, run.id);
                }
              }
            }
          ]
        }
      );
    });

    model.connect();
    void model.refresh();
  }
};

export default plugin;
