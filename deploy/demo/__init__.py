"""`nearline demo`: the whole platform on ML-100K, end to end, in one command.

The modules, in the order a run uses them:

- ``settings``: the options (``NEARLINE_DEMO_*`` or flags) and what ``--quick`` changes;
- ``plan``: the 80/20 split in time order and the users shown before and after;
- ``namespace``: the run's own topic prefix, schema and groups, and removing them;
- ``services``: the stack (started only if needed) and where it answers;
- ``history``, ``offline``: replay and store the history, train and publish a model;
- ``role_processes``, ``children``, ``parent_guard``, ``readiness``, ``group_offsets``: the
  worker and the server as child processes, started after the history, ready to answer;
- ``live``, ``set_watch``, ``recs_reader``, ``coverage``, ``http_probe``, ``showcase``: the
  live phase and its measurements;
- ``summary``: the closing figures; ``run`` and ``stopping``: the orchestration and the
  clean stop.

Example::

    from deploy.demo.run import run_demo
    from deploy.demo.settings import DemoSettings, with_quick

    summary = run_demo(with_quick(DemoSettings()))   # needs ML-100K installed
    print("\\n".join(summary.lines()))
"""
