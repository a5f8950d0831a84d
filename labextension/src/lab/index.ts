/**
 * JupyterLab extension: a left sidebar panel that runs the active cell or
 * file in a gVisor sandbox, reports complexity and keeps a snippet library.
 */

import { ILabShell, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { runIcon } from '@jupyterlab/ui-components';

import { type CodeSource, CodeRemotePanel } from './panel';

const COMMAND_RUN = 'coderemote:run-active';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'coderemote:plugin',
  description: 'Run the active cell or file in a gVisor sandbox; complexity report and snippet library.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker, IEditorTracker],
  activate: (app: JupyterFrontEnd, shell: ILabShell, notebooks: INotebookTracker, editors: IEditorTracker) => {
    // The code of whichever of the two was focused last in the main area.
    const active = () => {
      const widget = shell.currentWidget;
      if (widget && widget === notebooks.currentWidget) {
        const cell = notebooks.activeCell;
        const index = notebooks.currentWidget.content.activeCellIndex;
        return cell ? { editor: cell.editor, code: cell.model.sharedModel.getSource(), where: `cell [${index + 1}]` } : null;
      }
      if (widget && widget === editors.currentWidget) {
        const file = editors.currentWidget.content;
        return { editor: file.editor, code: file.model.sharedModel.getSource(), where: editors.currentWidget.context.path };
      }
      return null;
    };
    const source: CodeSource = {
      current: () => {
        const found = active();
        return found ? { code: found.code, where: found.where } : null;
      },
      insert: code => {
        const editor = active()?.editor;
        if (!editor?.replaceSelection) {
          return false;
        }
        editor.replaceSelection(code);
        return true;
      }
    };
    const panel = new CodeRemotePanel(app.serviceManager, source);
    panel.title.icon = runIcon;
    shell.add(panel, 'left', { rank: 600 });

    app.commands.addCommand(COMMAND_RUN, {
      label: 'Run in Code Remote sandbox',
      execute: () => panel.runActive()
    });
    app.commands.addKeyBinding({ command: COMMAND_RUN, keys: ['Accel Shift Enter'], selector: '.jp-Notebook, .jp-FileEditor' });
  }
};

export default plugin;
