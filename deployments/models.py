"""Rollout records (profiles, rollouts, waves, host runs) arrive with the rollouts issue."""

from __future__ import annotations
