"""The pure core: incident rules, timeline, playbooks, postmortem. No Slack, no database."""
