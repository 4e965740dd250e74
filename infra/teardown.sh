#!/usr/bin/env bash
# Remove what infra/deploy.sh made, or print what that would run (--dry-run).
#
#   infra/teardown.sh --project P --region R [--dry-run] [--openai-secret NAME]
#                     [--delete-firestore]
#
# Removes the scheduler jobs, subscriptions, functions (the sandbox's Cloud Run service too),
# topics, the sandbox network, the grants on the project, the service accounts and the API token
# secret. The OpenAI secret goes only if deploy.sh created it (label agentlobby=managed). The
# Firestore database holds conversations: it stays unless --delete-firestore is given. APIs stay
# enabled. Whatever is already gone is skipped; a dry run prints every command as if everything
# existed.
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USAGE="usage: infra/teardown.sh --project P --region R [--dry-run] [--openai-secret NAME] \
[--delete-firestore]"
DELETE_FIRESTORE=0
LEFT_BEHIND=()

parse_teardown_args() {
  while (($#)); do
    case $1 in
      --delete-firestore) DELETE_FIRESTORE=1 ;;
      *) die "unknown argument '$1'. $USAGE" ;;
    esac
    shift
  done
}

# present CMD...: like exists, but a dry run answers "it exists", so it prints the delete too.
present() {
  if ((DRY_RUN)); then
    render "$@" >&3
    return 0
  fi
  exists "$@"
}

all_subscriptions() {
  local i topic
  for ((i = 0; i < FN_COUNT; i++)); do
    for topic in $(topics_of "$i"); do
      subscription_name "$topic" "${FN_NAME[$i]}"
      echo
    done
  done
  echo "$DEAD_LETTER_SUBSCRIPTION"
}

# First, so that nothing calls the sweeper while it goes.
delete_schedules() {
  local i job
  for ((i = 0; i < FN_COUNT; i++)); do
    is_scheduled "$i" || continue
    job=$(scheduler_job "$i")
    if present gcloud scheduler jobs describe "$job" --location="$REGION" \
      --project="$PROJECT"; then
      run gcloud scheduler jobs delete "$job" --location="$REGION" --quiet --project="$PROJECT"
    fi
  done
}

delete_subscriptions() {
  local sub
  for sub in $(all_subscriptions | awk '!seen[$0]++'); do
    if present gcloud pubsub subscriptions describe "$sub" --project="$PROJECT"; then
      run gcloud pubsub subscriptions delete "$sub" --quiet --project="$PROJECT"
    fi
  done
}

# The sandbox is a Cloud Run service deployed with `gcloud run deploy --function`: Cloud
# Functions does not know it, Cloud Run does.
delete_functions() {
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    if is_sandbox "$i"; then
      if present gcloud run services describe "${FN_NAME[$i]}" --region="$REGION" \
        --project="$PROJECT"; then
        run gcloud run services delete "${FN_NAME[$i]}" --region="$REGION" --quiet \
          --project="$PROJECT"
      fi
    elif present gcloud functions describe "${FN_NAME[$i]}" --region="$REGION" \
      --project="$PROJECT"; then
      run gcloud functions delete "${FN_NAME[$i]}" --gen2 --region="$REGION" --quiet \
        --project="$PROJECT"
    fi
  done
}

delete_topics() {
  local topic
  for topic in $(all_lobbies) "$DEAD_LETTER_TOPIC"; do
    if present gcloud pubsub topics describe "$topic" --project="$PROJECT"; then
      run gcloud pubsub topics delete "$topic" --quiet --project="$PROJECT"
    fi
  done
}

# Direct VPC egress holds addresses in the subnet for a while after the service is gone; if the
# subnet is still in use, say so and go on: a later teardown removes it.
delete_sandbox_network() {
  if present gcloud compute firewall-rules describe "$SANDBOX_FIREWALL" --project="$PROJECT"; then
    run gcloud compute firewall-rules delete "$SANDBOX_FIREWALL" --quiet --project="$PROJECT"
  fi
  if present gcloud compute networks subnets describe "$SANDBOX_SUBNET" --region="$REGION" \
    --project="$PROJECT"; then
    if ! run gcloud compute networks subnets delete "$SANDBOX_SUBNET" --region="$REGION" \
      --quiet --project="$PROJECT"; then
      LEFT_BEHIND+=("subnet $SANDBOX_SUBNET and network $SANDBOX_NETWORK (addresses still held \
by stopped Cloud Run instances; run teardown again in an hour)")
      return 0
    fi
  fi
  if present gcloud compute networks describe "$SANDBOX_NETWORK" --project="$PROJECT"; then
    run gcloud compute networks delete "$SANDBOX_NETWORK" --quiet --project="$PROJECT"
  fi
}

has_project_binding() {
  local roles
  roles=$(capture "$2" gcloud projects get-iam-policy "$PROJECT" \
    --flatten='bindings[].members' --filter="bindings.members:$1" \
    --format='value(bindings.role)')
  grep -qx "$2" <<<"$roles"
}

delete_accounts() {
  local kind email role
  for kind in user agent model-agent interpreter recorder sweeper; do
    email=$(account_email "$kind")
    # roles/cloudtrace.agent comes with `deploy.sh --trace`.
    for role in roles/datastore.user roles/cloudtrace.agent; do
      if has_project_binding "serviceAccount:$email" "$role"; then
        run gcloud projects remove-iam-policy-binding "$PROJECT" \
          --member="serviceAccount:$email" --role="$role" --condition=None --format=none
      fi
    done
  done
  for kind in $ACCOUNT_KINDS; do
    email=$(account_email "$kind")
    if present gcloud iam service-accounts describe "$email" --project="$PROJECT"; then
      run gcloud iam service-accounts delete "$email" --quiet --project="$PROJECT"
    fi
  done
}

delete_secrets() {
  if present gcloud secrets describe "$API_TOKEN_SECRET" --project="$PROJECT"; then
    run gcloud secrets delete "$API_TOKEN_SECRET" --quiet --project="$PROJECT"
  fi
  local label
  label=$(capture managed gcloud secrets describe "$OPENAI_SECRET" --project="$PROJECT" \
    --format='value(labels.agentlobby)' 2>/dev/null || true)
  if [[ $label == managed ]]; then
    run gcloud secrets delete "$OPENAI_SECRET" --quiet --project="$PROJECT"
  elif ((!DRY_RUN)) && exists gcloud secrets describe "$OPENAI_SECRET" --project="$PROJECT"; then
    LEFT_BEHIND+=("secret $OPENAI_SECRET (not created by deploy.sh)")
  fi
}

delete_firestore() {
  if ((DELETE_FIRESTORE)); then
    run gcloud firestore databases delete --database='(default)' --quiet --project="$PROJECT"
  else
    LEFT_BEHIND+=("the Firestore (default) database: conversations, the agent registry, the \
index (--delete-firestore removes it)")
  fi
}

main() {
  parse_common_args "$USAGE" "$@"
  parse_teardown_args ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
  load_functions
  preflight
  delete_schedules
  delete_subscriptions
  delete_functions
  delete_topics
  delete_sandbox_network
  delete_accounts
  delete_secrets
  delete_firestore
  note ""
  note "Left in place: enabled APIs; the images in the Artifact Registry repositories" \
    "gcf-artifacts (Cloud Functions) and cloud-run-source-deploy (the sandbox), and the" \
    "gcf-v2-sources-*/gcf-v2-uploads-*/run-sources-* buckets the builds made."
  local item
  for item in ${LEFT_BEHIND[@]+"${LEFT_BEHIND[@]}"}; do
    note "Left in place: $item"
  done
}

main "$@"
