"""Doctor's inspector: from raw fault events to consistent resource states and alarms.

``policy`` says what each kind of event means (critical or aggregated, host
or switch); ``aggregation`` counts non-critical failures per resource within
a window; ``inspector`` correlates an event with the resource map (switch →
hosts → instances → ports, instance → server group), acts through the
controller, and hands the resulting alarm changes to the notifier, all in
one unit of work. It meets the controller and the notifier only through
``ports``.
"""
