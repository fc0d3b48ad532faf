#!/usr/bin/python
# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kafka_user
short_description: Manage a Kafka SCRAM user and the ACLs of its principal
version_added: 0.2.0
description:
  - Creates, updates or removes the SCRAM credential of a user (KIP-554, the admin API that KRaft
    clusters use) and, with O(acls), makes the ACLs of the principal C(User:<name>) exactly the
    given list (under the C(StandardAuthorizer)).
  - The broker never reveals a password, so the module checks it by logging in as the user over
    the connection's own SASL listener (O(update_password=always)). A connection without SASL cannot
    check, and the password is then only set when the user has no credential yet.
author: fraudstream developers (@fraudstream)
options:
  name:
    description: The user name; its principal is C(User:<name>).
    type: str
    required: true
  password:
    description:
      - The user's password. Required with O(state=present). Never logged or returned.
    type: str
  scram_mechanism:
    description: The SCRAM mechanism of the credential.
    type: str
    choices: [SCRAM-SHA-256, SCRAM-SHA-512]
    default: SCRAM-SHA-512
  iterations:
    description: PBKDF2 iterations of a new credential (Kafka accepts 4096 to 16384).
    type: int
    default: 8192
  update_password:
    description:
      - V(always) resets the password when logging in with it fails; V(on_create) sets it only
        when the user has no credential for O(scram_mechanism).
    type: str
    choices: [always, on_create]
    default: always
  acls:
    description:
      - Every ALLOW or DENY ACL of C(User:<name>); others of that principal are removed. Unset, the
        principal's ACLs are left alone.
    type: list
    elements: dict
    suboptions:
      resource_type:
        description: The kind of resource.
        type: str
        required: true
        choices: [topic, group, cluster, transactional_id]
      resource_name:
        description: The resource's name (or prefix); C(kafka-cluster) for the cluster.
        type: str
        default: kafka-cluster
      pattern_type:
        description: Whether O(acls[].resource_name) is a whole name or a prefix.
        type: str
        choices: [literal, prefixed]
        default: literal
      operations:
        description: Operations, for example V(Read), V(Write), V(Describe), V(IdempotentWrite).
        type: list
        elements: str
        required: true
      permission:
        description: Allow or deny.
        type: str
        choices: [allow, deny]
        default: allow
      host:
        description: The client host the ACL applies to.
        type: str
        default: "*"
  state:
    description: V(absent) removes the credential and every ACL of the principal.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - fraudstream.platform.kafka
attributes:
  check_mode:
    support: full
    description: Reports what would change (never the password) and changes nothing.
  diff_mode:
    support: full
    description: The principal's ACLs before and after, one per line.
notes:
  - The connection's principal needs C(Alter) and C(Describe) on the cluster (a super user does).
"""

EXAMPLES = r"""
- name: The producer writes transactions and labels, and reads transactions back to resume
  fraudstream.platform.kafka_user:
    name: producer
    password: "{{ vault_kafka_producer_password }}"
    acls:
      - {resource_type: topic, resource_name: fraud-transactions, operations: [Write, Read, Describe]}
      - {resource_type: topic, resource_name: fraud-labels, operations: [Write, Describe]}
    bootstrap_servers: [127.0.0.1:9092]
    security_protocol: SASL_SSL
    sasl_username: admin
    sasl_password: "{{ vault_kafka_admin_password }}"
    ssl_cafile: /etc/fraudstream/kafka-ca.crt
"""

RETURN = r"""
actions:
  description: What was (or, in check mode, would be) done; never a password.
  returned: always
  type: list
  elements: str
  sample: ["set the SCRAM-SHA-512 credential", "add ALLOW Write on topic fraud-labels (literal) from *"]
acls:
  description: The principal's ACLs afterwards, as C(permission operation resource_type:name (pattern) host).
  returned: always
  type: list
  elements: str
  sample: ["ALLOW Write on topic fraud-labels (literal) from *"]
diff:
  description: The principal's ACLs before and after, one per line, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before: ""
    after: "ALLOW Write on topic fraud-labels (literal) from *\n"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka import (
    SASL_PROTOCOLS,
    ConnectionLog,
    KafkaModuleClient,
    kafka_argument_spec,
    scrub,
)

try:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )
    from kafka.errors import KafkaError
except ImportError:
    KafkaError = Exception  # KafkaModuleClient fails the module with missing_required_lib

# kafka-acls' operation names, as the ACL option takes them.
OPERATIONS = {"All": "ALL", "Read": "READ", "Write": "WRITE", "Create": "CREATE", "Delete": "DELETE",
              "Alter": "ALTER", "Describe": "DESCRIBE", "ClusterAction": "CLUSTER_ACTION",
              "DescribeConfigs": "DESCRIBE_CONFIGS", "AlterConfigs": "ALTER_CONFIGS",
              "IdempotentWrite": "IDEMPOTENT_WRITE"}
ACLS_NEEDED = {"cluster": ["Alter", "Describe"]}


def wanted_acls(module):
    """The ACL option as a set of (permission, operation, resource_type, name, pattern, host) tuples."""
    wanted = set()
    for i, acl in enumerate(module.params["acls"] or []):
        unknown = [op for op in acl["operations"] if op not in OPERATIONS]
        if unknown or not acl["operations"]:
            module.fail_json(msg="acls[%d].operations: %s; use some of %s" % (
                i, "unknown %s" % ", ".join(unknown) if unknown else "empty", ", ".join(OPERATIONS)))
        if acl["resource_type"] == "cluster" and acl["resource_name"] != "kafka-cluster":
            module.fail_json(msg="acls[%d].resource_name: the cluster's ACLs are on kafka-cluster, not '%s'"
                                 % (i, acl["resource_name"]))
        for op in acl["operations"]:
            wanted.add((acl["permission"].upper(), op, acl["resource_type"], acl["resource_name"],
                        acl["pattern_type"], acl["host"]))
    return wanted


def describe_acls(admin, principal):
    found, dummy = admin.describe_acls(ACLFilter(
        principal=principal, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    names = {v: k for k, v in OPERATIONS.items()}
    return {(a.permission_type.name, names.get(a.operation.name, a.operation.name),
             a.resource_pattern.resource_type.name.lower(), a.resource_pattern.resource_name,
             a.resource_pattern.pattern_type.name.lower(), a.host) for a in found}


def to_acl(principal, item):
    permission, op, kind, name, pattern, host = item
    return ACL(principal=principal, host=host, operation=ACLOperation[OPERATIONS.get(op, op)],
               permission_type=ACLPermissionType[permission],
               resource_pattern=ResourcePattern(ResourceType[kind.upper()], name, ACLResourcePatternType[pattern.upper()]))


def text(item):
    permission, op, kind, name, pattern, host = item
    return "%s %s on %s %s (%s) from %s" % (permission, op, kind, name, pattern, host)


def has_credential(admin, name, mechanism):
    users = admin.describe_user_scram_credentials([name])
    infos = (users.get(name) or {}).get("credential_infos") or []
    return any(info["mechanism"] == mechanism for info in infos)


def can_log_in(client, name, password, mechanism):
    """True when the user logs in with the password over the connection's SASL listener, False when refused."""
    config = dict(client.config, sasl_mechanism=mechanism, sasl_plain_username=name, sasl_plain_password=password,
                  bootstrap_timeout_ms=min(client.config["request_timeout_ms"], 10000))
    seen = ConnectionLog()
    with seen:
        try:
            KafkaAdminClient(client_id="ansible-fraudstream-login-check", **config).close()
            return True
        except KafkaError as exc:
            if seen.versions and not seen.authenticated:
                return False
            client.fail("checking the password of user '%s' by logging in" % name, exc)
    return False


def main():
    argument_spec = kafka_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        scram_mechanism=dict(type="str", default="SCRAM-SHA-512", choices=["SCRAM-SHA-256", "SCRAM-SHA-512"]),
        iterations=dict(type="int", default=8192),
        update_password=dict(type="str", default="always", choices=["always", "on_create"], no_log=False),
        acls=dict(type="list", elements="dict", options=dict(
            resource_type=dict(type="str", required=True, choices=["topic", "group", "cluster", "transactional_id"]),
            resource_name=dict(type="str", default="kafka-cluster"),
            pattern_type=dict(type="str", default="literal", choices=["literal", "prefixed"]),
            operations=dict(type="list", elements="str", required=True),
            permission=dict(type="str", default="allow", choices=["allow", "deny"]),
            host=dict(type="str", default="*"),
        )),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["password"])])
    p = module.params
    if not p["name"] or ":" in p["name"]:
        module.fail_json(msg="name '%s': give the bare user name (without 'User:')" % p["name"])
    if not 4096 <= p["iterations"] <= 16384:
        module.fail_json(msg="iterations %d: Kafka accepts 4096 to 16384" % p["iterations"])
    principal = "User:%s" % p["name"]
    mechanism = ScramMechanism[p["scram_mechanism"].replace("-", "_")]
    wanted = wanted_acls(module) if p["state"] == "present" else set()

    client = KafkaModuleClient(module, acls=ACLS_NEEDED)
    actions, warnings = [], []
    try:
        admin = client.admin
        exists = has_credential(admin, p["name"], mechanism)
        before = describe_acls(admin, principal)
        if p["state"] == "absent":
            if exists:
                actions.append("remove the %s credential" % p["scram_mechanism"])
                if not module.check_mode:
                    check(admin.alter_user_scram_credentials([UserScramCredentialDeletion(p["name"], mechanism)]))
        else:
            reason = None
            if not exists:
                reason = "set the %s credential" % p["scram_mechanism"]
            elif p["update_password"] == "always":
                if client.config["security_protocol"] in SASL_PROTOCOLS:
                    if not can_log_in(client, p["name"], p["password"], p["scram_mechanism"]):
                        reason = "reset the %s password (logging in with it failed)" % p["scram_mechanism"]
                else:
                    warnings.append("the connection does not use SASL, so the password of an existing user cannot be "
                                    "checked; it is left as it is (update_password behaves as on_create)")
            if reason:
                actions.append(reason)
                if not module.check_mode:
                    check(admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
                        p["name"], mechanism, p["password"], iterations=p["iterations"])]))
        if p["acls"] is not None or p["state"] == "absent":
            add, remove = sorted(wanted - before), sorted(before - wanted)
            actions += ["add %s" % text(a) for a in add] + ["remove %s" % text(a) for a in remove]
            if not module.check_mode:
                if remove:
                    admin.delete_acls([to_acl(principal, a) for a in remove])
                if add:
                    failed = admin.create_acls([to_acl(principal, a) for a in add])["failed"]
                    if failed:
                        raise failed[0]("creating the ACLs of %s" % principal)
            after = wanted
        else:
            after = before
    except (KafkaError, RuntimeError) as exc:
        client.fail("user '%s'" % p["name"], exc)
    finally:
        client.close()

    for warning in warnings:
        module.warn(warning)
    result = dict(changed=bool(actions), actions=[scrub(a, p["password"]) for a in actions],
                  acls=sorted(text(a) for a in after))
    if module._diff:
        result["diff"] = dict(before="\n".join(sorted(text(a) for a in before)) + "\n",
                              after="\n".join(result["acls"]) + "\n")
    module.exit_json(**result)


def check(errors):
    """alter_user_scram_credentials returns {user: error message or None}."""
    failed = ["%s: %s" % (user, message) for user, message in errors.items() if message]
    if failed:
        raise RuntimeError("; ".join(failed))


if __name__ == "__main__":
    main()
