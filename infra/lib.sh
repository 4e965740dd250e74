# shellcheck shell=bash
# shellcheck disable=SC2034 # the names below are used by the scripts that source this file
# Shared by infra/deploy.sh and infra/teardown.sh: names, the function table, argument
# parsing and the run/capture/exists helpers that make --dry-run print instead of act.
#
# Dry run: every command goes to stdout (fd 3, so it survives $(...)) one per line, quoted
# so that a shell (or Python's shlex) reads back the same words; nothing runs, no credentials
# are needed. Real run: each command is echoed to stderr with a "+ " prefix, then run.
# Written for bash 3.2 as well (macOS): no associative arrays, no mapfile, no ${x,,}.

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$INFRA_DIR")
FUNCTIONS_CONF="$INFRA_DIR/functions.conf"

# Names of what deploy.sh creates. Everything carries the agentlobby prefix.
DEAD_LETTER_TOPIC=agentlobby-dead-letter
DEAD_LETTER_SUBSCRIPTION=agentlobby-dead-letter
API_TOKEN_SECRET=agentlobby-api-token
DEFAULT_OPENAI_SECRET=agentlobby-openai-api-key
SANDBOX_NETWORK=agentlobby-sandbox
SANDBOX_SUBNET=agentlobby-sandbox
SANDBOX_SUBNET_RANGE=10.124.0.0/24
SANDBOX_FIREWALL=agentlobby-sandbox-deny-egress
# Account kinds a function may run as (column `account` of functions.conf), then the two that
# run no function: the identities of Pub/Sub's pushes and of the scheduled calls.
FUNCTION_ACCOUNT_KINDS="user agent model-agent interpreter sandbox recorder sweeper"
ACCOUNT_KINDS="$FUNCTION_ACCOUNT_KINDS invoker scheduler"
RUNTIME=python312
ACK_DEADLINE_S=600
MAX_DELIVERY_ATTEMPTS=5
MIN_RETRY_DELAY=10s
MAX_RETRY_DELAY=600s
LOG_LEVEL=INFO
# Pub/Sub pushes and Cloud Scheduler calls from the same project count as internal traffic (the
# agents and the sweeper take this); "all" if they get 404s.
AGENT_INGRESS=internal-only
# A call from another Cloud Run service counts as internal only if it leaves through a VPC with
# Private Google Access; the interpreter's does not, so the sandbox takes all traffic and IAM
# (run.invoker for its callers only) decides.
SANDBOX_INGRESS=all
# Functions running as account kind sweeper are called by Cloud Scheduler (job agentlobby-NAME,
# in the region) on this cron schedule, with an OIDC token of agentlobby-scheduler. A call that
# fails is not retried: the next one comes a minute later.
SWEEP_SCHEDULE="* * * * *"
SWEEP_TIME_ZONE=Etc/UTC
# Composite indexes, one per line: collection-group field:order field:order ...
FIRESTORE_INDEXES="dead_letters conversation_id:ascending recorded_at:ascending"
REQUIRED_APIS="cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
artifactregistry.googleapis.com pubsub.googleapis.com firestore.googleapis.com
secretmanager.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com
compute.googleapis.com logging.googleapis.com cloudscheduler.googleapis.com"

PROJECT=""
REGION=""
DRY_RUN=0
exec 3>&1

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

note() {
  printf '%s\n' "$*" >&2
}

# Quote one word for a shell: bare when it is safe, else in single quotes.
quote() {
  case $1 in
    '' | *[!A-Za-z0-9_./:=@,+%-]*)
      local q="'\\''"
      printf "'%s'" "${1//\'/$q}"
      ;;
    *) printf '%s' "$1" ;;
  esac
}

render() {
  local line="" word
  for word in "$@"; do
    line="$line $(quote "$word")"
  done
  printf '%s\n' "${line# }"
}

# run CMD...: print it (dry run) or echo and run it.
run() {
  if ((DRY_RUN)); then
    render "$@" >&3
  else
    printf '+ %s\n' "$(render "$@")" >&2
    "$@"
  fi
}

# capture PLACEHOLDER CMD...: the command's stdout; in a dry run, print it and answer PLACEHOLDER.
capture() {
  local placeholder=$1
  shift
  if ((DRY_RUN)); then
    render "$@" >&3
    printf '%s' "$placeholder"
  else
    printf '+ %s\n' "$(render "$@")" >&2
    "$@"
  fi
}

# exists CMD...: run a describe command; 0 if the thing exists, 1 if it does not. Any other
# failure (no permission, API disabled, no network) stops the script with gcloud's message.
# A dry run prints the command and answers "does not exist".
exists() {
  if ((DRY_RUN)); then
    render "$@" >&3
    return 1
  fi
  local err
  err=$(mktemp)
  printf '+ %s\n' "$(render "$@")" >&2
  if "$@" >/dev/null 2>"$err"; then
    rm -f "$err"
    return 0
  fi
  if grep -qiE 'not[ _]?found|does not exist|404' "$err"; then
    rm -f "$err"
    return 1
  fi
  cat "$err" >&2
  rm -f "$err"
  die "could not tell whether it exists: $(render "$@")"
}

# retry CMD...: for IAM bindings on accounts created seconds ago (IAM is eventually consistent).
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if "$@"; then
      return 0
    fi
    ((DRY_RUN)) && return 1
    note "retrying in $((attempt * 5)) s (new accounts take a moment to propagate)"
    sleep $((attempt * 5))
  done
  return 1
}

account_email() {
  printf 'agentlobby-%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT"
}

# The function table (infra/functions.conf), as parallel arrays indexed 0..FN_COUNT-1.
FN_NAME=()
FN_MEMORY=()
FN_TIMEOUT=()
FN_MAX=()
FN_CONCURRENCY=()
FN_ACCOUNT=()
FN_TOPICS=()
FN_CALLS=()
FN_COUNT=0

load_functions() {
  local name memory timeout max concurrency account topics calls extra callee
  while read -r name memory timeout max concurrency account topics calls extra; do
    case $name in '' | '#'*) continue ;; esac
    [[ -n $calls && -z $extra ]] || die "$FUNCTIONS_CONF: '$name' needs exactly 8 columns"
    case " $FUNCTION_ACCOUNT_KINDS " in
      *" $account "*) ;;
      *)
        die "$FUNCTIONS_CONF: '$name' has account '$account';" \
          "use one of: $FUNCTION_ACCOUNT_KINDS"
        ;;
    esac
    [[ $name =~ ^[a-z][a-z0-9-]*$ ]] || die "$FUNCTIONS_CONF: bad function name '$name'"
    if [[ $calls != - ]]; then
      for callee in ${calls//,/ }; do
        # A caller is deployed with its callees' URLs, so they must be deployed before it.
        index_of "$callee" >/dev/null ||
          die "$FUNCTIONS_CONF: '$name' calls '$callee', which must be listed above it"
      done
    fi
    FN_NAME+=("$name")
    FN_MEMORY+=("$memory")
    FN_TIMEOUT+=("$timeout")
    FN_MAX+=("$max")
    FN_CONCURRENCY+=("$concurrency")
    FN_ACCOUNT+=("$account")
    FN_TOPICS+=("$topics")
    FN_CALLS+=("$calls")
  done <"$FUNCTIONS_CONF"
  FN_COUNT=${#FN_NAME[@]}
  ((FN_COUNT > 0)) || die "$FUNCTIONS_CONF lists no function"
}

# index_of NAME: the function's row in the table, or status 1.
index_of() {
  local i
  for ((i = 0; i < ${#FN_NAME[@]}; i++)); do
    if [[ ${FN_NAME[$i]} == "$1" ]]; then
      printf '%s' "$i"
      return 0
    fi
  done
  return 1
}

entry_point() {
  printf '%s' "${FN_NAME[$1]//-/_}"
}

# The functions that run untrusted code are deployed with `gcloud run deploy --function`, which
# sets the execution environment and the network in the same command (`gcloud functions deploy`
# cannot), so no revision of theirs ever serves with Cloud Run's defaults.
is_sandbox() {
  [[ ${FN_ACCOUNT[$1]} == sandbox ]]
}

# Whether Cloud Scheduler calls function i (rather than Pub/Sub or another function).
is_scheduled() {
  [[ ${FN_ACCOUNT[$1]} == sweeper ]]
}

# The Cloud Scheduler job that calls function i.
scheduler_job() {
  printf 'agentlobby-%s' "${FN_NAME[$1]}"
}

# Functions that function i calls over HTTP, one per line.
calls_of() {
  if [[ ${FN_CALLS[$1]} == - ]]; then
    return 0
  fi
  printf '%s\n' "${FN_CALLS[$1]}" | tr ',' '\n' | grep -v '^$' || true
}

# Account kinds of the functions that call function i, once each.
callers_of() {
  local j
  for ((j = 0; j < FN_COUNT; j++)); do
    if calls_of "$j" | grep -qx "${FN_NAME[$1]}"; then
      printf '%s\n' "${FN_ACCOUNT[$j]}"
    fi
  done | awk '!seen[$0]++'
}

# The variable a caller reads a callee's URL from: sandbox -> AGENTLOBBY_SANDBOX_URL.
url_variable() {
  printf 'AGENTLOBBY_%s_URL' "$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
}

# Topics function i is pushed from, one per line ("-" = none): lobbies or the dead-letter topic.
topics_of() {
  if [[ ${FN_TOPICS[$1]} == - ]]; then
    return 0
  fi
  printf '%s\n' "${FN_TOPICS[$1]}" | tr ',' '\n' | grep -v '^$' || true
}

# Lobbies function i joins: its topics but the dead-letter topic.
lobbies_of() {
  topics_of "$1" | grep -vx "$DEAD_LETTER_TOPIC" || true
}

# Every lobby in the table, once, in order of first appearance.
all_lobbies() {
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    lobbies_of "$i"
  done | awk '!seen[$0]++'
}

# Lobbies joined by the functions that run as account kind $1.
lobbies_of_account() {
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    if [[ ${FN_ACCOUNT[$i]} == "$1" ]]; then
      lobbies_of "$i"
    fi
  done | awk '!seen[$0]++'
}

# Whether some function is pushed from the dead-letter topic (else its subscription is pull).
dead_letters_pushed() {
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    if topics_of "$i" | grep -qx "$DEAD_LETTER_TOPIC"; then
      return 0
    fi
  done
  return 1
}

account_in_use() {
  local i
  for ((i = 0; i < FN_COUNT; i++)); do
    if [[ ${FN_ACCOUNT[$i]} == "$1" ]]; then
      return 0
    fi
  done
  return 1
}

# Whether deploy.sh needs the account of kind $1: the invoker always, the scheduler's when a
# function is scheduled, the others when a function runs as it.
account_needed() {
  case $1 in
    invoker) return 0 ;;
    scheduler) account_in_use sweeper ;;
    *) account_in_use "$1" ;;
  esac
}

# subscription_name TOPIC FUNCTION
subscription_name() {
  if [[ $1 == "$DEAD_LETTER_TOPIC" ]]; then
    printf '%s' "$DEAD_LETTER_SUBSCRIPTION"
  else
    printf 'agentlobby-%s-%s' "$1" "$2"
  fi
}

# parse_common_args USAGE "$@": --project, --region, --dry-run, --openai-secret; other flags go
# to $EXTRA_ARGS.
EXTRA_ARGS=()
OPENAI_SECRET=$DEFAULT_OPENAI_SECRET
parse_common_args() {
  local usage=$1
  shift
  while (($#)); do
    case $1 in
      --project=*) PROJECT=${1#*=} ;;
      --region=*) REGION=${1#*=} ;;
      --openai-secret=*) OPENAI_SECRET=${1#*=} ;;
      --project | --region | --openai-secret)
        (($# >= 2)) || die "$1 needs a value"
        case $1 in
          --project) PROJECT=$2 ;;
          --region) REGION=$2 ;;
          *) OPENAI_SECRET=$2 ;;
        esac
        shift
        ;;
      --dry-run) DRY_RUN=1 ;;
      -h | --help)
        printf '%s\n' "$usage"
        exit 0
        ;;
      *) EXTRA_ARGS+=("$1") ;;
    esac
    shift
  done
  [[ -n $PROJECT ]] || die "--project is required. $usage"
  [[ -n $REGION ]] || die "--region is required. $usage"
  [[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "--project '$PROJECT' is not a project id"
  [[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "--region '$REGION' is not a region like us-central1"
  [[ $OPENAI_SECRET =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
    die "--openai-secret '$OPENAI_SECRET' is not a Secret Manager secret id"
}

# Real runs need gcloud with an active account; dry runs need nothing.
preflight() {
  ((DRY_RUN)) && return 0
  command -v gcloud >/dev/null || die "gcloud is not on PATH: install the Google Cloud CLI"
  local account
  account=$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null || true)
  [[ -n $account ]] || die "gcloud has no active account: run 'gcloud auth login'"
  note "acting as $account on project $PROJECT, region $REGION"
}
