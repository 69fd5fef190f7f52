"""Daily course recommendations as a Luigi task graph: `luigi --module workflow RecommendationsTask` finds them here.

Every task of every pipeline in workflow.registry is registered with luigi when this package is imported with
luigi loaded (as `luigi --module workflow` does); otherwise the tasks load on first use (`workflow.FilmsTask`),
so the read server, which never imports luigi, lives in the same package.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

# NumPy asks the kernel for huge pages for its large arrays (madvise), and where transparent huge pages defragment on
# madvise (most kernels' default) every fresh array then waits for memory compaction: 0.7 to 1.6 s of system time in
# each step at 20M ratings. NumPy reads this when it is first imported, which the steps do after this package.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

REPOSITORY_CONFIG = Path(__file__).resolve().parent.parent / "luigi.cfg"
__all__ = ["recommendations_for_user"]


def use_repository_config() -> None:
    """Make the repository's luigi.cfg apply wherever a command starts (LUIGI_CONFIG_PATH keeps the last word)."""
    import luigi  # noqa: PLC0415

    if REPOSITORY_CONFIG.exists() and Path("luigi.cfg").resolve() != REPOSITORY_CONFIG:
        luigi.configuration.get_config().add_config_path(str(REPOSITORY_CONFIG))


def recommendations_for_user(user_id: int, threshold: float = 4.5) -> list[str]:
    """Return the titles of the user's current recommendations rated above the threshold, best first."""
    from workflow import databases  # noqa: PLC0415
    from workflow.pipelines.courses import warehouse  # noqa: PLC0415

    return [title for title, _ in warehouse.recommended_titles(databases.warehouse_url(), user_id, threshold)]


def __getattr__(name: str) -> object:
    """Return a task of the registry's pipelines, or DailyPipelines, by its name (importing luigi on first use)."""
    if not name[:1].isupper():  # task names are CamelCase; `from workflow import registry` asks for submodules here
        raise AttributeError(f"module 'workflow' has no attribute {name!r}")
    from workflow import daily, registry  # noqa: PLC0415

    tasks = {**registry.tasks_by_name(), "DailyPipelines": daily.DailyPipelines}
    if name in tasks:
        return tasks[name]
    raise AttributeError(f"module 'workflow' has no attribute {name!r}")


if "luigi" in sys.modules:  # started by luigi: register every task so `--module workflow` finds them by name
    # At exit the interpreter's last garbage collections walk every object the imports made (0.07 s of a no-op run,
    # 0.15 s of a full one); a process that is ending has nothing left worth collecting.
    atexit.register(gc.freeze)
    use_repository_config()
    import luigi.tools.range  # noqa: F401  (RangeDaily and friends)

    from workflow import daily, registry  # noqa: F401  (daily: DailyPipelines is a task too)

    registry.tasks_by_name()  # imports each pipeline's tasks, which registers them with luigi
