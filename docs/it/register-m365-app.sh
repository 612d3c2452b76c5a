#!/usr/bin/env bash
# Register `newsletter` in Microsoft Entra ID: a public client (no secret) that signs the
# sending mailbox in with OAuth 2.0 and sends over SMTP (and reads bounces over IMAP).
#
#   What it creates: one app registration, "Newsletter" by default, for this organisation
#   only (single tenant), with
#     - the redirect URI http://localhost under "Mobile and desktop applications"
#       (Entra accepts any port on it: `newsletter login` listens on a free one);
#     - "Allow public client flows" on (for `newsletter login --device-code`);
#     - the delegated permissions SMTP.Send and IMAP.AccessAsUser.All (the scopes the app
#       asks for are https://outlook.office.com/SMTP.Send and .../IMAP.AccessAsUser.All),
#       plus offline_access, openid and profile;
#     - its service principal (the "Enterprise application"), so people can sign in.
#   No client secret, no certificate, no application (app-only) permission.
#
#   Needs: the Azure CLI (`az`), bash 3.2 or later (macOS, Linux, WSL or Git Bash), and an
#   account allowed to register applications (Application Developer or more). Granting
#   admin consent (--grant-admin-consent) needs a Cloud Application Administrator,
#   Application Administrator or Global Administrator, or users consent at first sign-in
#   if your tenant lets them.
#
#   Usage:
#     az login --allow-no-subscriptions     # a tenant without Azure subscriptions too
#     bash register-m365-app.sh [--name NAME] [--grant-admin-consent]
#
#   At the end it prints the two lines for the chair's .env:
#     NEWSLETTER_OAUTH_CLIENT_ID=...   (the Application (client) ID)
#     NEWSLETTER_OAUTH_TENANT=...      (the Directory (tenant) ID)
#
#   It still needs, by hand (see docs/it/microsoft-365.md): Authenticated SMTP switched on
#   for the sending mailbox, and Send As rights if the bulletin goes out from a mailbox
#   other than the one that signs in.
set -euo pipefail

NAME="Newsletter"
GRANT="no"
while [ $# -gt 0 ]; do
  case "$1" in
    --name)
      [ $# -ge 2 ] || { echo "--name needs a value" >&2; exit 2; }
      NAME="$2"
      shift 2
      ;;
    --grant-admin-consent) GRANT="yes"; shift ;;
    -h | --help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "error: $*" >&2; exit 1; }

command -v az >/dev/null 2>&1 ||
  die "the Azure CLI (az) is not installed: see https://learn.microsoft.com/cli/azure/install-azure-cli"

TENANT=$(az account show --query tenantId -o tsv 2>/dev/null) ||
  die "not signed in to Azure: run az login --allow-no-subscriptions, then this script again"
[ -n "$TENANT" ] || die "az account show named no tenant: run az login --allow-no-subscriptions"

EXCHANGE="00000002-0000-0ff1-ce00-000000000000" # Office 365 Exchange Online
GRAPH="00000003-0000-0000-c000-000000000000"    # Microsoft Graph

# The id of a delegated permission (an oauth2PermissionScope) a resource exposes, looked up
# in this tenant rather than copied here; empty when the resource does not expose it.
scope_id() {
  az ad sp show --id "$1" \
    --query "oauth2PermissionScopes[?value=='$2'].id | [0]" -o tsv 2>/dev/null || true
}

EXCHANGE_ACCESS=""
GRAPH_ACCESS=""
add_access() { # resource, permission id
  local entry="{\"id\": \"$2\", \"type\": \"Scope\"}"
  if [ "$1" = "$EXCHANGE" ]; then
    EXCHANGE_ACCESS="${EXCHANGE_ACCESS:+$EXCHANGE_ACCESS, }$entry"
  else
    GRAPH_ACCESS="${GRAPH_ACCESS:+$GRAPH_ACCESS, }$entry"
  fi
}

echo "Tenant: $TENANT"
echo "Looking up the permissions' ids in your tenant..."
# SMTP.Send and IMAP.AccessAsUser.All belong to Exchange Online (the tokens are for
# https://outlook.office.com); the portal also lists them under Microsoft Graph, which is
# where they are taken from if Exchange Online does not expose them here.
for permission in SMTP.Send IMAP.AccessAsUser.All; do
  id=$(scope_id "$EXCHANGE" "$permission")
  resource="$EXCHANGE"
  where="Office 365 Exchange Online"
  if [ -z "$id" ]; then
    id=$(scope_id "$GRAPH" "$permission")
    resource="$GRAPH"
    where="Microsoft Graph"
  fi
  [ -n "$id" ] || die "neither Exchange Online nor Microsoft Graph exposes $permission in this tenant"
  add_access "$resource" "$id"
  echo "  $permission ($where)"
done
for permission in offline_access openid profile; do
  id=$(scope_id "$GRAPH" "$permission")
  [ -n "$id" ] || die "Microsoft Graph does not expose $permission in this tenant"
  add_access "$GRAPH" "$id"
  echo "  $permission (Microsoft Graph)"
done

existing=$(az ad app list --display-name "$NAME" --query "[0].appId" -o tsv 2>/dev/null || true)
[ -z "$existing" ] ||
  die "an app registration named '$NAME' exists already (client ID $existing): use it, delete it, or pass --name"

MANIFEST=$(mktemp "${TMPDIR:-/tmp}/newsletter-permissions.XXXXXX")
trap 'rm -f "$MANIFEST"' EXIT
{
  echo "["
  if [ -n "$EXCHANGE_ACCESS" ]; then
    echo "  {\"resourceAppId\": \"$EXCHANGE\", \"resourceAccess\": [$EXCHANGE_ACCESS]},"
  fi
  echo "  {\"resourceAppId\": \"$GRAPH\", \"resourceAccess\": [$GRAPH_ACCESS]}"
  echo "]"
} >"$MANIFEST"

echo "Registering '$NAME'..."
APP_ID=$(az ad app create \
  --display-name "$NAME" \
  --sign-in-audience AzureADMyOrg \
  --is-fallback-public-client true \
  --public-client-redirect-uris "http://localhost" \
  --required-resource-accesses "@$MANIFEST" \
  --query appId -o tsv)
[ -n "$APP_ID" ] || die "az ad app create returned no application ID"

echo "Creating its service principal (enterprise application)..."
az ad sp create --id "$APP_ID" >/dev/null

CONSENT="not granted: grant it in the Entra admin center (App registrations, $NAME, API permissions, Grant admin consent), or let the chair consent at first sign-in if your tenant allows it"
if [ "$GRANT" = "yes" ]; then
  echo "Granting admin consent..."
  # A new registration takes a little while to reach every directory replica.
  for attempt in 1 2 3 4 5 6; do
    if az ad app permission admin-consent --id "$APP_ID" >/dev/null 2>&1; then
      CONSENT="granted for the whole organisation"
      break
    fi
    [ "$attempt" -lt 6 ] && sleep 10
  done
fi

cat <<EOF

Done. App registration '$NAME':
  Application (client) ID: $APP_ID
  Directory (tenant) ID:   $TENANT
  Admin consent:           $CONSENT

Still to do by hand (docs/it/microsoft-365.md):
  - Authenticated SMTP on for the sending mailbox, e.g. in Exchange Online PowerShell:
      Set-CASMailbox -Identity news@your-domain -SmtpClientAuthenticationDisabled \$false
  - Send As rights if the From address is another mailbox than the one that signs in.

Give these two lines to the chair, for the .env file of newsletter
(or: newsletter setup --oauth-client-id $APP_ID --oauth-tenant $TENANT):

NEWSLETTER_OAUTH_CLIENT_ID=$APP_ID
NEWSLETTER_OAUTH_TENANT=$TENANT
EOF
