"""gaitwatch pipeline: records, schema, engine, alert rules, config, sinks, run loop, CLI."""
