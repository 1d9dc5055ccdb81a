"""The OCOP programme's use cases, for the people who work the cycle:
producers registering products and working their tasks, officers and
councils working the inbox, program managers managing diagrams, accounts
and the dashboard. One call is one transaction; pages read through the
query functions here."""
