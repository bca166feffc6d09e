"""The local executor of ``studio batch``: this process, or each process of ``torchrun
--nproc_per_node N -m studio batch ...`` / ``accelerate launch --num_processes N -m
studio batch ...``, which split the pending jobs with accelerate's ``PartialState``.

Without a GPU the state is made with ``cpu=True`` (the gloo backend): a plain
``PartialState()`` in CPU processes that torchrun launched sees one process in each, and
each would render everything. With GPUs each process renders on its own device. Each
process claims and commits its own share; the main one gathers the counts.
"""

from __future__ import annotations

from ..store import Store
from .jobs import Job, engine_key, measure, render_pending, run_job


class LocalExecutor:
    """This process, or one of the processes torchrun / accelerate launch: each renders
    its share of the pending jobs (``PartialState``: on the CPU, with gloo, when there is
    no GPU; on its own GPU otherwise)."""

    def __init__(self, settings):
        import torch
        from accelerate import PartialState

        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.is_main = self.state.is_main_process
        self.workers = self.state.num_processes
        self.settings = settings

    def close(self) -> None:
        """Leave the process group, and free what it left in reference cycles now: freed
        at interpreter exit instead, it aborted about one launch in ten (SIGABRT or
        SIGBUS in a non-main process; measured with torch 2.13 and gloo)."""
        import gc

        self.state.destroy_process_group()
        gc.collect()

    def wait(self) -> None:
        self.state.wait_for_everyone()

    def load(self, sample: Job, products: dict, where) -> tuple[str, str, str | None]:
        """Load the engine here (``sample``, ``where``: for the Ray executor's probe);
        (engine key, engine name, notice)."""
        from pipelines.engines import load_engine

        device = self.state.device
        self.engine, notice = load_engine(self.settings.engine,
                                          device=str(device) if device.type == "cuda" else None)
        self.products = products
        return engine_key(self.engine), self.engine.name, notice

    def estimate(self, job: Job) -> tuple[float, int]:
        return measure(job, self.products, self.engine, self.settings)

    def render(self, store: Store, jobs: list[Job], engine: str, echo) -> list[int]:
        """Render this process's share of ``jobs``; on the main process, the creatives
        each process committed (in process order)."""
        mine = jobs[self.state.process_index::self.workers]
        owner = store.new_owner()

        def run(pending: list[Job]):
            for job in pending:
                yield job.key, run_job(store, job, owner, self.products, self.engine,
                                       self.settings), owner

        with store.keep_leases(owner):
            rendered = sum(render_pending(mine, run, f"batch ({self.engine.name})",
                                          echo).values())
        self.wait()
        if self.workers == 1:
            return [rendered]
        from accelerate.utils import gather_object

        return gather_object([rendered])
