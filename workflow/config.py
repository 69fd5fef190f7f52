"""Settings, declared for luigi (sections of luigi.cfg); nothing here runs at import or reads the environment."""

from __future__ import annotations

import luigi


class rules(luigi.Config):  # noqa: N801  (luigi maps the class name to the [rules] section)
    """The configurable business rules ([rules] in luigi.cfg)."""

    min_rating = luigi.FloatParameter(default=1.0, description="lowest valid rating")
    max_rating = luigi.FloatParameter(default=5.0, description="highest valid rating")
    language_fill = luigi.Parameter(default="R", description="language of courses with none")
    recommendations_per_user = luigi.IntParameter(default=3)
    max_invalid_share = luigi.FloatParameter(
        default=0.01, description="share of a table's rows that may break the rules before the run fails"
    )


class recommender(luigi.Config):  # noqa: N801
    """How the course recommendations are made ([recommender] in luigi.cfg), and the factorization's settings."""

    method = luigi.ChoiceParameter(
        default="language_rule", choices=["language_rule", "als"], var_type=str,
        description="language_rule (the case study's rule) or als (matrix factorization by alternating least "
        "squares); --method on RecommendationsTask comes first",
    )  # fmt: skip
    rank = luigi.IntParameter(default=10, description="factors per user and course")
    regularization = luigi.FloatParameter(
        default=0.1, description="weight of the factors' size, times each user's or course's number of ratings"
    )
    iterations = luigi.IntParameter(default=10, description="sweeps over users, then courses")
    seed = luigi.IntParameter(default=42, description="the factors' starting values, and the hold-out without stamps")
    relevant = luigi.FloatParameter(
        default=4.0, description="a held-out rating this high counts as one a recommendation should find"
    )


class source(luigi.Config):  # noqa: N801
    """How the source database is read ([source] in luigi.cfg)."""

    schema = luigi.Parameter(default="public", description="schema of the source tables")
    courses_table = luigi.Parameter(default="courses")
    rating_table = luigi.Parameter(default="rating")
    rating_timestamp_column = luigi.Parameter(
        default="rated_at", description="timestamp of a rating; the extract for date D takes those before D+1 00:00 UTC"
    )


class films(luigi.Config):  # noqa: N801
    """How the film pipeline reads Pagila ([films] in luigi.cfg; the URL is read by workflow.databases)."""

    schema = luigi.Parameter(default="public", description="schema of the Pagila tables")
    film_table = luigi.Parameter(default="film")
    inventory_table = luigi.Parameter(default="inventory")
    rental_table = luigi.Parameter(default="rental")
    rental_timestamp_column = luigi.Parameter(
        default="rental_date", description="the co-rentals of date D count the rentals made before D+1 00:00 UTC"
    )
    rating_table = luigi.Parameter(
        default="film_rating", description="ratings (customer_id, film_id, rating[, rated_at]); empty: none"
    )
    rating_timestamp_column = luigi.Parameter(default="rated_at")
    wait_for_rating_table = luigi.BoolParameter(
        default=False, description="wait for the ratings table like the others, rather than using NULL averages"
    )
    recommendations_per_film = luigi.IntParameter(default=3)


class connection(luigi.Config):  # noqa: N801
    """How database connections retry while a server is starting or restarting ([connection] in luigi.cfg)."""

    attempts = luigi.IntParameter(default=5, description="connection attempts before the task fails")
    first_wait = luigi.FloatParameter(default=1.0, description="seconds before the first retry; doubles each time")
    timeout = luigi.IntParameter(default=10, description="seconds one connection attempt may take (connect_timeout)")


class engine(luigi.Config):  # noqa: N801
    """Which engine runs the transform steps ([engine] in luigi.cfg; workflow.engines resolves the choice)."""

    name = luigi.Parameter(
        default="", description="pandas (the default) or spark; --engine-name, then WORKFLOW_ENGINE, then this "
        "decide"
    )  # fmt: skip


class database(luigi.Config):  # noqa: N801
    """The databases' URLs ([database] in luigi.cfg); the environment variables come first (workflow.databases)."""

    source_url = luigi.OptionalParameter(default=None, description="the application database (SOURCE_DATABASE_URL "
                                         "first)")  # fmt: skip
    dwh_url = luigi.OptionalParameter(default=None, description="the warehouse (DWH_DATABASE_URL first)")
    films_url = luigi.OptionalParameter(default=None, description="the film pipeline's Pagila (FILMS_DATABASE_URL "
                                        "first)")  # fmt: skip


class spark(luigi.Config):  # noqa: N801
    """The Spark engine's settings ([spark] in luigi.cfg; option names as in luigi.contrib.spark where they overlap).

    The current names use underscores; luigi still reads the older dashed ones (driver-memory, ...), with a
    deprecation warning.
    """

    master = luigi.Parameter(default="local[*]", description="local[*], local[2] or spark://host:7077; SPARK_MASTER "
                             "in the environment comes first")  # fmt: skip
    conf = luigi.Parameter(default="", description="other Spark settings: key=value pairs separated by |")
    jars = luigi.Parameter(default="", description="extra jars, comma-separated")
    driver_memory = luigi.Parameter(default="")
    executor_memory = luigi.Parameter(default="")
    shuffle_partitions = luigi.IntParameter(
        default=0,
        description="partitions of each shuffle; 0: one per 400,000 rows of a step's largest input (10 to 1,000)",
    )  # fmt: skip
    master_timeout = luigi.FloatParameter(
        default=10.0,
        description="seconds a spark:// master has to accept a connection",
    )  # fmt: skip
    extract = luigi.ChoiceParameter(
        default="copy", choices=["copy", "jdbc"], var_type=str,
        description="copy (COPY streamed on the driver) or jdbc (the executors read in ranges of the first column)",
    )  # fmt: skip
    jdbc_partitions = luigi.IntParameter(default=8)


class lineage(luigi.Config):  # noqa: N801
    """OpenLineage events of every task run ([lineage] in luigi.cfg; OPENLINEAGE_* variables configure the client)."""

    file = luigi.BoolParameter(
        default=False, description="append every event as a JSON line to <output>/lineage/<date>.jsonl"
    )
    namespace = luigi.Parameter(default="course-recommendations", description="the namespace of the jobs")
    wait_s = luigi.FloatParameter(
        default=2.0,
        description="seconds an event may take to reach the OpenLineage backend; one that does not is "
        "logged as not delivered, and the run sends the backend nothing more",
    )


class retention(luigi.Config):  # noqa: N801
    """How many dates `python -m workflow retain` keeps ([retention] in luigi.cfg)."""

    keep_days = luigi.IntParameter(
        default=0, description="the dates kept, up to yesterday (UTC); older ones are removed. 0: keep everything"
    )
