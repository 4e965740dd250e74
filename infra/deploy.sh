#!/usr/bin/env bash
# Deploy agentlobby to a Google Cloud project, or print what that would run (--dry-run).
#
#   infra/deploy.sh --project P --region R [--dry-run] [--allow-unauthenticated]
#                   [--openai-secret NAME] [--trace]
#
# --trace sends every function's OpenTelemetry spans to Cloud Trace (OTEL_TRACES_EXPORTER=
# gcp_trace, the Cloud Trace API, roles/cloudtrace.agent for each function's account but the
# sandbox's, which has no roles and no route out). Without it tracing is off.
#
# Sets up, in order: APIs; Firestore (native) and its indexes; secrets; one service account per
# role; lobby topics and the dead-letter topic; least-privilege grants; the sandbox network;
# every function in infra/functions.conf in table order (2nd gen, HTTP; the sandbox with its gen2
# execution environment and Direct VPC egress in the same command, before the interpreter that
# calls it); run.invoker for callers, for the push account and for the scheduler's account; the
# agent registry in Firestore; one push subscription per lobby membership; and the Cloud
# Scheduler job that calls the sweeper every minute. docs/deploy.md explains each step.
#
# Idempotent: what exists is checked with `describe` first and left alone or brought back to the
# wanted settings (subscriptions and scheduler jobs are updated in place); a function whose
# source and flags are unchanged (label agentlobby_deploy) is not redeployed. A dry run prints
# every command as if nothing existed, one per line, and needs neither credentials nor network.
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USAGE="usage: infra/deploy.sh --project P --region R [--dry-run] [--allow-unauthenticated] \
[--openai-secret NAME] [--trace]"
ALLOW_UNAUTHENTICATED=0
TRACE=0
PUBSUB_AGENT=""
FN_URL=()
FN_DEPLOYED=()

parse_deploy_args() {
  while (($#)); do
    case $1 in
      --allow-unauthenticated) ALLOW_UNAUTHENTICATED=1 ;;
      --trace) TRACE=1 ;;
      *) die "unknown argument '$1'. $USAGE" ;;
    esac
    shift
  done
}

enable_apis() {
  # shellcheck disable=SC2086 # REQUIRED_APIS is a list of words
  run gcloud services enable $REQUIRED_APIS --project="$PROJECT"
  if ((TRACE)); then
    run gcloud services enable cloudtrace.googleapis.com --project="$PROJECT"
  fi
}

pubsub_service_agent() {
  local number
  number=$(capture PROJECT_NUMBER gcloud projects describe "$PROJECT" \
    --format='value(projectNumber)')
  [[ -n $number ]] || die "could not read the project number of $PROJECT"
  PUBSUB_AGENT="serviceAccount:service-$number@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# run_tolerating PATTERN CMD...: run CMD; a failure whose output matches PATTERN is fine.
run_tolerating() {
  local pattern=$1 out
  shift
  if ((DRY_RUN)); then
    render "$@" >&3
    return 0
  fi
  printf '+ %s\n' "$(render "$@")" >&2
  if out=$("$@" 2>&1); then
    return 0
  fi
  if grep -qiE "$pattern" <<<"$out"; then
    note "  (already there)"
    return 0
  fi
  printf '%s\n' "$out" >&2
  die "failed: $(render "$@")"
}

ensure_firestore() {
  if exists gcloud firestore databases describe --database='(default)' --project="$PROJECT"; then
    local type
    type=$(gcloud firestore databases describe --database='(default)' --project="$PROJECT" \
      --format='value(type)')
    [[ $type == FIRESTORE_NATIVE ]] ||
      die "the (default) database of $PROJECT is $type; agentlobby needs Firestore in native mode"
  else
    run gcloud firestore databases create --database='(default)' --location="$REGION" \
      --type=firestore-native --project="$PROJECT"
  fi
  local line group fields field
  while read -r line; do
    [[ -n $line ]] || continue
    group=${line%% *}
    fields=()
    for field in ${line#* }; do
      fields+=("--field-config=field-path=${field%%:*},order=${field#*:}")
    done
    run_tolerating 'already exists' gcloud firestore indexes composite create \
      --database='(default)' --collection-group="$group" --query-scope=collection \
      "${fields[@]}" --async --project="$PROJECT"
  done <<<"$FIRESTORE_INDEXES"
}

# ensure_secret NAME: the secret, without its value.
ensure_secret() {
  exists gcloud secrets describe "$1" --project="$PROJECT" ||
    run gcloud secrets create "$1" --replication-policy=automatic --labels=agentlobby=managed \
      --project="$PROJECT"
}

has_enabled_version() {
  local version
  version=$(capture "" gcloud secrets versions list "$1" --filter=state:enabled --limit=1 \
    --format='value(name)' --project="$PROJECT")
  [[ -n $version ]]
}

# add_version NAME PRODUCER: pipe PRODUCER's output into a new version (never via argv).
add_version() {
  if ((DRY_RUN)); then
    render gcloud secrets versions add "$1" --data-file=- --project="$PROJECT" >&3
    return 0
  fi
  "$2" | run gcloud secrets versions add "$1" --data-file=- --project="$PROJECT"
}

openai_key_from_env() {
  printf '%s' "$OPENAI_API_KEY"
}

new_api_token() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

ensure_secrets() {
  ensure_secret "$API_TOKEN_SECRET"
  has_enabled_version "$API_TOKEN_SECRET" || add_version "$API_TOKEN_SECRET" new_api_token
  account_in_use model-agent || return 0
  ensure_secret "$OPENAI_SECRET"
  has_enabled_version "$OPENAI_SECRET" && return 0
  if [[ -n ${OPENAI_API_KEY:-} ]]; then
    add_version "$OPENAI_SECRET" openai_key_from_env
  elif ((DRY_RUN)); then
    note "note: a real run needs OPENAI_API_KEY in its environment (read once, stored in" \
      "Secret Manager) or a version already in secret $OPENAI_SECRET"
    add_version "$OPENAI_SECRET" openai_key_from_env
  else
    die "secret $OPENAI_SECRET has no version. Add the key without putting it on a command" \
      "line: read -rs KEY && printf %s \"\$KEY\" | gcloud secrets versions add" \
      "$OPENAI_SECRET --data-file=- --project=$PROJECT   (or export OPENAI_API_KEY and rerun)"
  fi
}

ensure_accounts() {
  local kind
  for kind in $ACCOUNT_KINDS; do
    account_needed "$kind" || continue
    exists gcloud iam service-accounts describe "$(account_email "$kind")" \
      --project="$PROJECT" ||
      run gcloud iam service-accounts create "agentlobby-$kind" \
        --display-name="agentlobby $kind" --project="$PROJECT"
  done
}

ensure_topic() {
  exists gcloud pubsub topics describe "$1" --project="$PROJECT" ||
    run gcloud pubsub topics create "$1" --labels=agentlobby=managed --project="$PROJECT"
}

ensure_topics() {
  local lobby
  for lobby in $(all_lobbies); do
    ensure_topic "$lobby"
  done
  ensure_topic "$DEAD_LETTER_TOPIC"
  # Pub/Sub drops messages on a topic without subscriptions. Without a function to record them
  # (functions.conf), dead letters wait in a pull subscription for 7 days.
  dead_letters_pushed && return 0
  exists gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION" \
    --project="$PROJECT" ||
    run gcloud pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION" \
      --topic="$DEAD_LETTER_TOPIC" --message-retention-duration=7d --expiration-period=never \
      --labels=agentlobby=managed --project="$PROJECT"
}

grant_roles() {
  local kind member lobby lobbies
  for kind in user agent model-agent interpreter recorder sweeper; do
    account_in_use "$kind" || continue
    member="serviceAccount:$(account_email "$kind")"
    retry run gcloud projects add-iam-policy-binding "$PROJECT" --member="$member" \
      --role=roles/datastore.user --condition=None --format=none
    if ((TRACE)); then
      retry run gcloud projects add-iam-policy-binding "$PROJECT" --member="$member" \
        --role=roles/cloudtrace.agent --condition=None --format=none
    fi
    # The API posts to any lobby; the sweeper republishes stalled messages of any lobby.
    if [[ $kind == user || $kind == sweeper ]]; then
      lobbies=$(all_lobbies)
    else
      lobbies=$(lobbies_of_account "$kind")
    fi
    for lobby in $lobbies; do
      retry run gcloud pubsub topics add-iam-policy-binding "$lobby" --member="$member" \
        --role=roles/pubsub.publisher --format=none --project="$PROJECT"
    done
  done
  if account_in_use user; then
    retry run gcloud secrets add-iam-policy-binding "$API_TOKEN_SECRET" \
      --member="serviceAccount:$(account_email user)" \
      --role=roles/secretmanager.secretAccessor --format=none --project="$PROJECT"
  fi
  if account_in_use model-agent; then
    retry run gcloud secrets add-iam-policy-binding "$OPENAI_SECRET" \
      --member="serviceAccount:$(account_email model-agent)" \
      --role=roles/secretmanager.secretAccessor --format=none --project="$PROJECT"
  fi
  # The sandbox account gets nothing, anywhere. The interpreter's run.invoker on the sandbox
  # function comes with the deploy (grant_callers), the scheduler's on the sweeper with the
  # invokers' (grant_invokers). Pub/Sub's own agent mints the push OIDC tokens and moves
  # undeliverable messages to the dead-letter topic. Cloud Scheduler's agent mints the scheduled
  # calls' tokens with the role it gets when its API is enabled: nothing to grant here.
  retry run gcloud iam service-accounts add-iam-policy-binding "$(account_email invoker)" \
    --member="$PUBSUB_AGENT" --role=roles/iam.serviceAccountTokenCreator --format=none \
    --project="$PROJECT"
  retry run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
    --member="$PUBSUB_AGENT" --role=roles/pubsub.publisher --format=none --project="$PROJECT"
}

# A VPC without Cloud NAT, without Private Google Access and with a deny-all egress rule: the
# sandbox function's traffic goes there (Direct VPC egress, all traffic) and nowhere else.
ensure_sandbox_network() {
  account_in_use sandbox || return 0
  exists gcloud compute networks describe "$SANDBOX_NETWORK" --project="$PROJECT" ||
    run gcloud compute networks create "$SANDBOX_NETWORK" --subnet-mode=custom \
      --project="$PROJECT"
  exists gcloud compute networks subnets describe "$SANDBOX_SUBNET" --region="$REGION" \
    --project="$PROJECT" ||
    run gcloud compute networks subnets create "$SANDBOX_SUBNET" --network="$SANDBOX_NETWORK" \
      --region="$REGION" --range="$SANDBOX_SUBNET_RANGE" --no-enable-private-ip-google-access \
      --project="$PROJECT"
  exists gcloud compute firewall-rules describe "$SANDBOX_FIREWALL" --project="$PROJECT" ||
    run gcloud compute firewall-rules create "$SANDBOX_FIREWALL" --network="$SANDBOX_NETWORK" \
      --direction=EGRESS --action=DENY --rules=all --destination-ranges=0.0.0.0/0 \
      --priority=100 --project="$PROJECT"
}

# A hash of the deploy root and of the flags: the label that lets a rerun skip a function.
source_digest() {
  local hasher=(sha256sum)
  command -v sha256sum >/dev/null || hasher=(shasum -a 256)
  {
    (cd "$REPO_DIR" && find functions -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
      -print0 | LC_ALL=C sort -z | xargs -0 "${hasher[@]}")
    printf '%s\n' "$@"
  } | "${hasher[@]}" | cut -c1-32
}

deploy_args() {
  local i=$1 name=${FN_NAME[$1]} kind=${FN_ACCOUNT[$1]} env_vars callee
  env_vars="AGENTLOBBY_PROJECT=$PROJECT,AGENTLOBBY_LOG_LEVEL=$LOG_LEVEL"
  for callee in $(calls_of "$i"); do
    env_vars="$env_vars,$(url_variable "$callee")=${FN_URL[$(index_of "$callee")]}"
  done
  if ((TRACE)) && ! is_sandbox "$i"; then
    env_vars="$env_vars,OTEL_TRACES_EXPORTER=gcp_trace"
  fi
  if ((FN_CONCURRENCY[i] > 1)); then
    # functions-framework serves THREADS requests at once per instance (gunicorn's threads).
    env_vars="$env_vars,THREADS=${FN_CONCURRENCY[$i]}"
  fi
  if is_sandbox "$i"; then
    # Every revision starts locked: no roles, no secrets, gen2, all egress into the sandbox VPC.
    ARGS=(gcloud run deploy "$name" --region="$REGION" --project="$PROJECT" --source=functions
      --function="$(entry_point "$i")" --base-image="$RUNTIME"
      --service-account="$(account_email "$kind")" --memory="${FN_MEMORY[$i]}" --cpu=1
      --timeout="${FN_TIMEOUT[$i]}" --min-instances=0 --max-instances="${FN_MAX[$i]}"
      --concurrency="${FN_CONCURRENCY[$i]}" --set-env-vars="$env_vars" --clear-secrets
      --ingress="$SANDBOX_INGRESS" --no-allow-unauthenticated --execution-environment=gen2
      --network="$SANDBOX_NETWORK" --subnet="$SANDBOX_SUBNET" --network-tags="$SANDBOX_NETWORK"
      --vpc-egress=all-traffic --quiet)
    return 0
  fi
  ARGS=(gcloud functions deploy "$name" --gen2 --region="$REGION" --project="$PROJECT"
    --runtime="$RUNTIME" --source=functions --entry-point="$(entry_point "$i")" --trigger-http
    --service-account="$(account_email "$kind")" --memory="${FN_MEMORY[$i]}"
    --timeout="${FN_TIMEOUT[$i]}" --min-instances=0 --max-instances="${FN_MAX[$i]}"
    --concurrency="${FN_CONCURRENCY[$i]}" --set-env-vars="$env_vars")
  if ((FN_CONCURRENCY[i] > 1)); then
    ARGS+=(--cpu=1) # Cloud Run takes more than one request per instance only with a whole CPU
  fi
  case $kind in
    user)
      ARGS+=(--ingress-settings=all
        --set-secrets="AGENTLOBBY_API_TOKEN=$API_TOKEN_SECRET:latest")
      if ((ALLOW_UNAUTHENTICATED)); then
        ARGS+=(--allow-unauthenticated)
      else
        ARGS+=(--no-allow-unauthenticated)
      fi
      ;;
    model-agent)
      ARGS+=(--ingress-settings="$AGENT_INGRESS" --no-allow-unauthenticated
        --set-secrets="OPENAI_API_KEY=$OPENAI_SECRET:latest")
      ;;
    *) ARGS+=(--ingress-settings="$AGENT_INGRESS" --no-allow-unauthenticated --clear-secrets) ;;
  esac
}

# What `gcloud run services describe --format=json` says of a service, on one tab-separated line:
# READY or NOT_READY (the newest revision serves), the agentlobby_deploy label, execution
# environment, VPC egress, networks as network/subnet, service account; "-" for what is unset.
SERVICE_FACTS_PY='import json, sys
service = json.load(sys.stdin)
status = service.get("status", {})
template = service.get("spec", {}).get("template", {})
notes = template.get("metadata", {}).get("annotations", {})
ready = status.get("latestCreatedRevisionName") == status.get("latestReadyRevisionName") and any(
    c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
nets = json.loads(notes.get("run.googleapis.com/network-interfaces") or "[]")
print("READY" if ready else "NOT_READY",
      service.get("metadata", {}).get("labels", {}).get("agentlobby_deploy") or "-",
      notes.get("run.googleapis.com/execution-environment") or "-",
      notes.get("run.googleapis.com/vpc-access-egress") or "-",
      ",".join("%s/%s" % (str(n.get("network", "")).rsplit("/", 1)[-1],
                          str(n.get("subnetwork", "")).rsplit("/", 1)[-1]) for n in nets) or "-",
      template.get("spec", {}).get("serviceAccountName") or "-", sep="\t")'

# service_facts NAME: the line above; nothing if the service does not exist.
service_facts() {
  gcloud run services describe "$1" --region="$REGION" --project="$PROJECT" --format=json \
    2>/dev/null | python3 -c "$SERVICE_FACTS_PY" 2>/dev/null || true
}

# deployed_state I: "ACTIVE<tab>DIGEST" when function i serves its newest revision (and, for a
# sandbox, is locked down as deploy_args wants it); anything else means "deploy it".
deployed_state() {
  local i=$1 ready digest environment egress networks account
  if ! is_sandbox "$i"; then
    gcloud functions describe "${FN_NAME[$i]}" --region="$REGION" --project="$PROJECT" \
      --format='value(state,labels.agentlobby_deploy)' 2>/dev/null || true
    return 0
  fi
  IFS=$'\t' read -r ready digest environment egress networks account \
    <<<"$(service_facts "${FN_NAME[$i]}")" || true
  [[ -n $ready ]] || return 0
  if [[ $ready != READY ]]; then
    printf 'NOT_READY\t%s' "$digest"
  elif [[ $environment == gen2 && $egress == all-traffic &&
    ,$networks, == *",$SANDBOX_NETWORK/$SANDBOX_SUBNET,"* &&
    $account == "$(account_email "${FN_ACCOUNT[$i]}")" ]]; then
    printf 'ACTIVE\t%s' "$digest"
  else
    printf 'UNLOCKED\t%s' "$digest"
  fi
}

function_url() {
  local placeholder="https://${FN_NAME[$1]}-PLACEHOLDER.a.run.app"
  if is_sandbox "$1"; then
    capture "$placeholder" gcloud run services describe "${FN_NAME[$1]}" --region="$REGION" \
      --project="$PROJECT" --format='value(status.url)'
  else
    capture "$placeholder" gcloud functions describe "${FN_NAME[$1]}" --region="$REGION" \
      --project="$PROJECT" --format='value(serviceConfig.uri)'
  fi
}

# run.invoker on function i for the accounts of the functions that call it (the interpreter's
# on the sandbox), right after it is deployed and before its callers are.
grant_callers() {
  local kind
  for kind in $(callers_of "$1"); do
    retry run gcloud run services add-iam-policy-binding "${FN_NAME[$1]}" --region="$REGION" \
      --member="serviceAccount:$(account_email "$kind")" --role=roles/run.invoker \
      --format=none --project="$PROJECT"
  done
}

# In table order, so a callee's URL is known when its caller is deployed.
deploy_functions() {
  local i digest current
  for ((i = 0; i < FN_COUNT; i++)); do
    deploy_args "$i"
    digest=$(source_digest "${ARGS[@]}")
    current=""
    if ((!DRY_RUN)); then
      current=$(deployed_state "$i")
    fi
    if [[ $current == "ACTIVE"$'\t'"$digest" ]]; then
      note "${FN_NAME[$i]}: source and settings unchanged, not redeployed"
      FN_DEPLOYED[i]=0
    else
      if [[ $current == UNLOCKED* ]]; then
        note "${FN_NAME[$i]}: not locked down as deployed (changed by hand?), deploying it again"
      fi
      run "${ARGS[@]}" --update-labels="agentlobby=managed,agentlobby_deploy=$digest"
      FN_DEPLOYED[i]=1
    fi
    FN_URL[i]=$(function_url "$i")
    grant_callers "$i"
  done
}

# Before the sandbox was a function of its own, the interpreter ran the code and sent its egress
# into the sandbox network. A function deployed again here must reach Google APIs: if its service
# still has that network, take it off.
leave_sandbox_network() {
  ((DRY_RUN)) && return 0
  local i networks
  for ((i = 0; i < FN_COUNT; i++)); do
    if is_sandbox "$i" || ((!FN_DEPLOYED[i])); then
      continue
    fi
    networks=$(service_facts "${FN_NAME[$i]}" | cut -f5)
    if [[ ,$networks, == *",$SANDBOX_NETWORK/"* ]]; then
      run gcloud run services update "${FN_NAME[$i]}" --region="$REGION" --project="$PROJECT" \
        --clear-network --quiet
    fi
  done
}

# run.invoker for the push account on every function Pub/Sub pushes to, and for the scheduler's
# account on every scheduled function (and on nothing else).
grant_invokers() {
  local i invoker scheduler
  invoker="serviceAccount:$(account_email invoker)"
  scheduler="serviceAccount:$(account_email scheduler)"
  for ((i = 0; i < FN_COUNT; i++)); do
    # `remote` is pushed from the lobbies its members join at run time (agents add-remote).
    if [[ -n $(topics_of "$i") || ${FN_NAME[$i]} == remote ]]; then
      retry run gcloud run services add-iam-policy-binding "${FN_NAME[$i]}" \
        --region="$REGION" --member="$invoker" --role=roles/run.invoker --format=none \
        --project="$PROJECT"
    fi
    if is_scheduled "$i"; then
      retry run gcloud run services add-iam-policy-binding "${FN_NAME[$i]}" \
        --region="$REGION" --member="$scheduler" --role=roles/run.invoker --format=none \
        --project="$PROJECT"
    fi
  done
  # A rerun without --allow-unauthenticated takes the public access back; a sandbox and a
  # scheduled function never have it.
  ((DRY_RUN)) && return 0
  for ((i = 0; i < FN_COUNT; i++)); do
    if [[ ${FN_ACCOUNT[$i]} == user ]] && ((!ALLOW_UNAUTHENTICATED)) || is_sandbox "$i" ||
      is_scheduled "$i"; then
      if gcloud run services get-iam-policy "${FN_NAME[$i]}" --region="$REGION" \
        --project="$PROJECT" --format=json | grep -q '"allUsers"'; then
        run gcloud run services remove-iam-policy-binding "${FN_NAME[$i]}" --region="$REGION" \
          --member=allUsers --role=roles/run.invoker --format=none --project="$PROJECT"
      fi
    fi
  done
}

# One push subscription per (topic, function): OIDC as the invoker account, the lobby in the
# URL path, a 600 s ack deadline, retries with backoff, then the dead-letter topic. The dead
# letters' own subscription has no dead-letter topic: it retries until its 7-day retention ends.
ensure_subscriptions() {
  local i topic sub url settings
  for ((i = 0; i < FN_COUNT; i++)); do
    url=${FN_URL[$i]}
    for topic in $(topics_of "$i"); do
      sub=$(subscription_name "$topic" "${FN_NAME[$i]}")
      settings=(--push-endpoint="$url/projects/$PROJECT/topics/$topic"
        --push-auth-service-account="$(account_email invoker)"
        --push-auth-token-audience="$url" --ack-deadline="$ACK_DEADLINE_S"
        --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY"
        --message-retention-duration=7d --expiration-period=never --project="$PROJECT")
      if [[ $topic != "$DEAD_LETTER_TOPIC" ]]; then
        settings+=(--dead-letter-topic="projects/$PROJECT/topics/$DEAD_LETTER_TOPIC"
          --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS")
      fi
      if exists gcloud pubsub subscriptions describe "$sub" --project="$PROJECT"; then
        run gcloud pubsub subscriptions update "$sub" "${settings[@]}"
      else
        run gcloud pubsub subscriptions create "$sub" --topic="$topic" "${settings[@]}" \
          --labels=agentlobby=managed
      fi
      [[ $topic == "$DEAD_LETTER_TOPIC" ]] && continue
      retry run gcloud pubsub subscriptions add-iam-policy-binding "$sub" \
        --member="$PUBSUB_AGENT" --role=roles/pubsub.subscriber --format=none \
        --project="$PROJECT"
    done
  done
}

# One Cloud Scheduler job per scheduled function (the sweeper): a POST to its URL every minute,
# with an OIDC token of the scheduler's account for that URL, an attempt deadline of the
# function's timeout and no retry (the next call comes a minute later). Created once, then
# updated in place to these settings; a job paused by hand stays paused.
ensure_schedules() {
  local i job url settings
  for ((i = 0; i < FN_COUNT; i++)); do
    is_scheduled "$i" || continue
    job=$(scheduler_job "$i")
    url=${FN_URL[$i]}
    settings=(--location="$REGION" --schedule="$SWEEP_SCHEDULE" --time-zone="$SWEEP_TIME_ZONE"
      --uri="$url" --http-method=post --oidc-service-account-email="$(account_email scheduler)"
      --oidc-token-audience="$url" --attempt-deadline="${FN_TIMEOUT[$i]}"
      --max-retry-attempts=0 --description="agentlobby: runs ${FN_NAME[$i]}"
      --project="$PROJECT")
    if exists gcloud scheduler jobs describe "$job" --location="$REGION" \
      --project="$PROJECT"; then
      run gcloud scheduler jobs update http "$job" "${settings[@]}"
    else
      run gcloud scheduler jobs create http "$job" "${settings[@]}"
    fi
  done
}

# "AGENT LOBBY" per line for the memberships the registry already has.
registered_memberships() {
  local list=(env "AGENTLOBBY_PROJECT=$PROJECT" agentlobby agents --json)
  if ((DRY_RUN)); then
    render "${list[@]}" >&3
    return 0
  fi
  printf '+ %s\n' "$(render "${list[@]}")" >&2
  "${list[@]}" | python3 -c 'import json, sys
for agent in json.load(sys.stdin):
    for lobby in agent["lobbies"]:
        print(agent["name"], lobby)'
}

# The registry in Firestore (the project's CLI, with application default credentials): agents
# and their endpoints, lobbies, memberships. `agentlobby enter` also writes the subscription with
# the library's settings; it runs only for a membership the registry lacks, and
# ensure_subscriptions then sets the subscription as this script wants it.
register_agents() {
  local i lobby members
  for ((i = 0; i < FN_COUNT; i++)); do
    [[ -n $(lobbies_of "$i") ]] || continue
    run env "AGENTLOBBY_PROJECT=$PROJECT" agentlobby agents register "${FN_NAME[$i]}" \
      --endpoint "${FN_URL[$i]}" --push-auth-service-account "$(account_email invoker)"
  done
  for lobby in $(all_lobbies); do
    run env "AGENTLOBBY_PROJECT=$PROJECT" agentlobby lobbies create "$lobby"
  done
  members=$(registered_memberships)
  for ((i = 0; i < FN_COUNT; i++)); do
    for lobby in $(lobbies_of "$i"); do
      grep -qx "${FN_NAME[$i]} $lobby" <<<"$members" && continue
      run env "AGENTLOBBY_PROJECT=$PROJECT" agentlobby enter "${FN_NAME[$i]}" "$lobby"
    done
  done
}

summary() {
  ((DRY_RUN)) && return 0
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    [[ ${FN_ACCOUNT[$i]} == user ]] || continue
    note ""
    note "agentlobby is deployed. The API: ${FN_URL[$i]}"
    note "  token:  gcloud secrets versions access latest --secret=$API_TOKEN_SECRET" \
      "--project=$PROJECT"
    if ((ALLOW_UNAUTHENTICATED)); then
      note "  call:   curl -H \"Authorization: Bearer \$TOKEN\" ${FN_URL[$i]}/conversations/ID"
    else
      note "  call:   curl -H \"X-Serverless-Authorization: Bearer \$(gcloud auth" \
        "print-identity-token)\" -H \"Authorization: Bearer \$TOKEN\"" \
        "${FN_URL[$i]}/conversations/ID"
    fi
  done
}

main() {
  parse_common_args "$USAGE" "$@"
  parse_deploy_args ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
  load_functions
  preflight
  if ((!DRY_RUN)); then
    command -v agentlobby >/dev/null ||
      die "the agentlobby CLI is not on PATH (it registers the agents): pip install -e ."
  fi
  cd "$REPO_DIR"
  enable_apis
  pubsub_service_agent
  ensure_firestore
  ensure_secrets
  ensure_accounts
  ensure_topics
  grant_roles
  ensure_sandbox_network
  deploy_functions
  leave_sandbox_network
  grant_invokers
  register_agents
  ensure_subscriptions
  ensure_schedules
  summary
}

main "$@"
