"""Pages of the rollout app."""

from __future__ import annotations

from django.urls import path

from deployments.views import comparison, periodic_jobs, profiles, rollouts, schedules

app_name = "deployments"
urlpatterns = [
    path("profiles/", profiles.profile_list, name="profile-list"),
    path("profiles/new/", profiles.profile_new, name="profile-new"),
    path("profiles/<int:pk>/", profiles.profile_detail, name="profile-detail"),
    path("profiles/<int:pk>/general/", profiles.profile_general, name="profile-general"),
    path("profiles/<int:pk>/onboarding/", profiles.profile_onboarding, name="profile-onboarding"),
    path("profiles/<int:pk>/settings/form/", profiles.profile_settings_form, name="profile-settings-form"),
    path("profiles/<int:pk>/settings/raw/", profiles.profile_settings_raw, name="profile-settings-raw"),
    path("profiles/<int:pk>/settings/check/", profiles.profile_settings_check, name="profile-settings-check"),
    path(
        "profiles/<int:pk>/recommendations/<slug:recommendation_id>/adopt/",
        profiles.profile_adopt,
        name="profile-adopt",
    ),
    path("profiles/<int:pk>/exclusions/", profiles.profile_exclusions, name="profile-exclusions"),
    path("profiles/<int:pk>/schedules/", profiles.profile_schedules, name="profile-schedules"),
    path("profiles/<int:pk>/schedules/preview/", profiles.profile_schedules_preview, name="profile-schedules-preview"),
    path("profiles/<int:pk>/mdatp_managed.json", profiles.profile_managed_json, name="profile-managed-json"),
    path("profiles/<int:pk>/cron.d-mdatp.txt", profiles.profile_cron_file, name="profile-cron-file"),
    path("rollouts/", rollouts.rollout_list, name="rollouts"),
    path("rollouts/new/", rollouts.rollout_new, name="rollout-new"),
    path("rollouts/preview/", rollouts.rollout_preview, name="rollout-preview"),
    path("rollouts/<int:pk>/", rollouts.rollout_detail, name="rollout"),
    path("rollouts/<int:pk>/dry-run/", rollouts.rollout_dry_run, name="rollout-dry-run"),
    path("rollouts/<int:pk>/hosts/", rollouts.rollout_hosts, name="rollout-hosts"),
    path("rollouts/<int:pk>/hosts/<int:run_id>/", rollouts.host_run_detail, name="rollout-host"),
    path(
        "rollouts/<int:pk>/hosts/<int:run_id>/steps/<int:step_id>/output/",
        rollouts.step_output,
        name="rollout-step-output",
    ),
    path("rollouts/<int:pk>/comparison/", comparison.rollout_comparison, name="rollout-comparison"),
    path("rollouts/<int:pk>/comparison.csv", comparison.rollout_comparison_csv, name="rollout-comparison-csv"),
    path(
        "rollouts/<int:pk>/comparison/hosts/<int:run_id>/",
        comparison.rollout_comparison_host,
        name="rollout-comparison-host",
    ),
    path("rollouts/<int:pk>/report/", comparison.rollout_report_page, name="rollout-report"),
    path("rollouts/<int:pk>/schedule/", schedules.rollout_schedule_edit, name="rollout-schedule"),
    path("rollouts/schedule-preview/", schedules.schedule_preview, name="schedule-preview"),
    path("periodic-jobs/", periodic_jobs.periodic_job_list, name="periodic-jobs"),
    path("periodic-jobs/<int:pk>/", periodic_jobs.periodic_job_edit, name="periodic-job"),
    path("agents/expiring/", periodic_jobs.agents_expiring, name="agents-expiring"),
    path("rollouts/<int:pk>/<slug:action>/", rollouts.rollout_action, name="rollout-action"),
]
