"""A throwaway OpenLDAP ``slapd`` for tests and benchmarks.

:class:`Slapd` makes a tiny certificate authority and a server certificate
(SAN ``localhost`` and ``127.0.0.1``) with ``openssl``, writes a ``slapd.conf``
from ``tests/support/ldap/slapd.conf.in``, starts ``slapd -d 0`` in the
foreground on two free loopback ports (``ldap://`` and ``ldaps://``), waits
until an authenticated bind works and loads ``data.ldif.in`` online (so the
``memberof`` overlay fills ``memberOf``).

The directory (``dc=example,dc=org``) holds users ``alice``/``alicepw``,
``bob``/``bobpw`` and ``carol``/``cärol pw!`` (POSIX accounts with homes in
``/gpfs/home``), the service account ``cn=jupyterhub,ou=services`` /
``svcpw``, the posixGroup ``hpcusers`` (alice, bob) and the groupOfNames
``jupyterhub-users`` (alice, bob) and ``jupyterhub-admins`` (alice).

It also holds people with system ids, for the checks that refuse them
(:data:`SYSTEM_ID_PASSWORDS`): ``sysuser`` (uidNumber 1), ``rootgid``
(gidNumber 0) and ``wheeluser`` (member of the posixGroup ``wheel``, gidNumber
0), all members of ``jupyterhub-users``. Its ACL hides ``ou=people`` from
entries under ``ou=guests`` (a branch tests add), as some sites hide staff from
guests: such a person's base search for a ``ou=people`` DN gets noSuchObject.

Besides the usual schemas the server loads ``ldap/test-ad.schema``: Active
Directory-style attributes (``sAMAccountName``, ``unixHomeDirectory``,
``msSFU30UidNumber``, ...) in the auxiliary class ``testADAccount``, so tests can
map the authenticator's attribute names to non-default ones.

Needs the Debian packages ``slapd``, ``ldap-utils`` and ``openssl``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ldap3
from ldap3.utils.dn import escape_rdn

HERE = Path(__file__).resolve().parent / "ldap"
SLAPD = "/usr/sbin/slapd"
SLAPPASSWD = "/usr/sbin/slappasswd"

BASE_DN = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PW = "adminpw"
SVC_DN = f"cn=jupyterhub,ou=services,{BASE_DN}"
SVC_PW = "svcpw"
PASSWORDS = {"alice": "alicepw", "bob": "bobpw", "carol": "cärol pw!"}
#: People whose ids must never run (all in jupyterhub-users, so only their ids
#: refuse them): ``sysuser`` has uidNumber 1, ``rootgid`` gidNumber 0, and
#: ``wheeluser`` is listed in the posixGroup ``wheel`` (gidNumber 0).
SYSTEM_ID_PASSWORDS = {"sysuser": "sysuserpw", "rootgid": "rootgidpw", "wheeluser": "wheeluserpw"}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def user_dn(uid: str) -> str:
    """The DN of the person ``uid`` in the test directory."""
    return f"uid={uid},{PEOPLE_DN}"


def group_dn(cn: str) -> str:
    """The DN of the group ``cn`` in the test directory."""
    return f"cn={cn},{GROUPS_DN}"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """Make a self-signed EC certificate authority; return (cert, key) paths."""
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "30", "-subj", f"/CN={name}",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(key), "-out", str(crt),
    )  # fmt: skip
    return crt, key


def make_server_cert(directory: Path, ca_crt: Path, ca_key: Path) -> tuple[Path, Path]:
    """Make a server certificate for ``localhost``/``127.0.0.1`` signed by the CA."""
    crt, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(crt),
    )  # fmt: skip
    return crt, key


def _hash(password: str) -> str:
    return subprocess.run(
        [SLAPPASSWD, "-s", password], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Slapd:
    """One slapd instance in ``state_dir``; see the module docstring.

    Attributes
    ----------
    ldap_port, ldaps_port
        The loopback ports of the ``ldap://`` and ``ldaps://`` listeners.
    ca_file
        The test CA that signed the server certificate (shared with
        ``share_ca_with`` when given).
    other_ca_file
        A second CA that signed nothing: a client trusting only it must refuse.
    log_stats
        Write slapd's access log (debug level ``stats``: connections, binds,
        searches, results) to :attr:`log_path`.
    """

    state_dir: Path
    ldap_port: int = 0
    ldaps_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    share_ca_with: Slapd | None = None
    log_stats: bool = False

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        tls = self.state_dir / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "data").mkdir(exist_ok=True)
        if self.share_ca_with is not None:
            # Servers of one test share a CA, as the servers of one site do.
            source = self.share_ca_with.state_dir / "tls"
            ca_crt, ca_key = tls / "ca.crt", tls / "ca.key"
            shutil.copyfile(source / "ca.crt", ca_crt)
            shutil.copyfile(source / "ca.key", ca_key)
        else:
            ca_crt, ca_key = make_ca(tls, "ca")
        make_server_cert(tls, ca_crt, ca_key)
        self.other_ca_file, _ = make_ca(tls, "other-ca")
        self.ca_file = ca_crt
        conf = (HERE / "slapd.conf.in").read_text()
        conf = conf.replace("@DIR@", str(self.state_dir)).replace("@ROOTPW@", _hash(ADMIN_PW))
        conf = conf.replace("@SCHEMA_DIR@", str(HERE))
        (self.state_dir / "slapd.conf").write_text(conf)

    # -- addresses ---------------------------------------------------------
    @property
    def ldap_url(self) -> str:
        """``ldap://localhost:PORT`` (``localhost`` so the TLS host name check works)."""
        return f"ldap://localhost:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        """``ldaps://localhost:PORT``."""
        return f"ldaps://localhost:{self.ldaps_port}"

    @property
    def log_path(self) -> Path:
        """The access log written when ``log_stats`` is on."""
        return self.state_dir / "slapd.log"

    def log_text(self) -> str:
        """The access log so far (empty without ``log_stats``)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- life cycle --------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the slapd process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Start slapd (on the same ports as before, after a :meth:`stop`)."""
        if self.running:
            return
        for attempt in range(5):
            if not self.ldap_port or attempt > 0:
                self.ldap_port, self.ldaps_port = free_port(), free_port()
            urls = f"ldap://127.0.0.1:{self.ldap_port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
            debug = "stats" if self.log_stats else "0"
            with contextlib.ExitStack() as files:
                log = files.enter_context(self.log_path.open("ab")) if self.log_stats else None
                self.process = subprocess.Popen(
                    [SLAPD, "-d", debug, "-f", str(self.state_dir / "slapd.conf"), "-h", urls],
                    stdout=subprocess.DEVNULL,
                    stderr=log or subprocess.DEVNULL,
                )
            if self._wait_ready(timeout):
                return
            # slapd exits 1 without a word when a port is taken: try new ports.
            self._terminate()
        raise RuntimeError(
            f"slapd did not start; check: slaptest -u -f {self.state_dir}/slapd.conf"
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with self.admin() as conn:
                    if conn.bound:
                        return True
            except ldap3.core.exceptions.LDAPException:
                pass
            time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Stop slapd with SIGTERM (the data stays; :meth:`start` brings it back)."""
        self._terminate()

    def destroy(self) -> None:
        """Stop slapd and delete its state directory."""
        self._terminate()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the server for the duration of a ``with`` block."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # -- data --------------------------------------------------------------
    def load_initial_data(self) -> None:
        """Add the entries of ``data.ldif.in`` (online, so memberOf is filled)."""
        ldif = (HERE / "data.ldif.in").read_text()
        ldif = ldif.replace("@SVC_HASH@", _hash(SVC_PW))
        for name, pw in {**PASSWORDS, **SYSTEM_ID_PASSWORDS}.items():
            ldif = ldif.replace(f"@{name.upper()}_HASH@", _hash(pw))
        path = self.state_dir / "data.ldif"
        path.write_text(ldif)
        subprocess.run(
            ["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{self.ldap_port}", "-D", ADMIN_DN,
             "-w", ADMIN_PW, "-f", str(path)],
            check=True, capture_output=True,
        )  # fmt: skip

    @contextlib.contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        """A plain-text connection bound as the directory's root DN (loopback only)."""
        server = ldap3.Server(
            "127.0.0.1", port=self.ldap_port, get_info=ldap3.NONE, connect_timeout=5
        )
        conn = ldap3.Connection(server, ADMIN_DN, ADMIN_PW, receive_timeout=10)
        try:
            conn.bind()
            yield conn
        finally:
            conn.unbind()

    def _check(self, conn: ldap3.Connection, ok: bool, what: str) -> None:
        if not ok:
            raise RuntimeError(f"{what} failed: {conn.result}")

    def add_user(
        self,
        uid: str,
        password: str,
        *,
        posix: bool = True,
        uid_number: int = 20000,
        gid_number: int = 20000,
        home: str | None = None,
        extra: Mapping[str, object] | None = None,
        parent: str = PEOPLE_DN,
        classes: Sequence[str] = (),
    ) -> str:
        """Add a person (POSIX account unless ``posix=False``); return the DN.

        ``parent``: the entry's parent (``ou=people`` by default); ``classes``:
        further object classes (e.g. ``testADAccount``) for the ``extra`` attributes.
        """
        dn = f"uid={escape_rdn(uid)},{parent}"
        attrs: dict[str, object] = {
            "uid": uid,
            "cn": f"{uid.title()} Test",
            "sn": "Test",
            "userPassword": _hash(password),
        }
        object_classes = ["inetOrgPerson", *classes]
        if posix:
            object_classes.append("posixAccount")
            attrs.update(
                uidNumber=uid_number,
                gidNumber=gid_number,
                homeDirectory=home or f"/gpfs/home/{uid}",
            )
        attrs.update(extra or {})
        return self.add_entry(dn, object_classes, attrs)

    def add_entry(self, dn: str, classes: Sequence[str], attrs: Mapping[str, object]) -> str:
        """Add any entry as the root DN; return its DN."""
        with self.admin() as conn:
            self._check(conn, conn.add(dn, list(classes), dict(attrs)), f"add {dn}")
        return dn

    def entry_uuid(self, dn: str) -> str:
        """The ``entryUUID`` slapd gave the entry ``dn`` (an operational attribute)."""
        with self.admin() as conn:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
            self._check(conn, bool(conn.entries), f"read entryUUID of {dn}")
            return str(conn.entries[0].entryUUID.value)

    def delete(self, dn: str) -> None:
        """Delete one entry (missing entries are ignored)."""
        with self.admin() as conn:
            conn.delete(dn)
            if conn.result["result"] not in (0, 32):  # 32: noSuchObject
                raise RuntimeError(f"delete {dn} failed: {conn.result}")

    def add_group(
        self,
        cn: str,
        *,
        members: Sequence[str] = (),
        gid_number: int | None = None,
        extra: Mapping[str, object] | None = None,
        classes: Sequence[str] = (),
    ) -> str:
        """Add a groupOfNames (member DNs) or, with ``gid_number``, a posixGroup (uids).

        ``extra`` attributes and ``classes`` (auxiliary object classes) are added too.
        """
        dn = group_dn(cn)
        attrs: dict[str, object] = {"cn": cn}
        if gid_number is None:
            # groupOfNames needs at least one member; the root DN is a harmless filler.
            structural = "groupOfNames"
            attrs["member"] = list(members) or [ADMIN_DN]
        else:
            structural = "posixGroup"
            attrs["gidNumber"] = gid_number
            if members:
                attrs["memberUid"] = list(members)
        attrs.update(extra or {})
        return self.add_entry(dn, [structural, *classes], attrs)

    def set_password(self, uid: str, password: str) -> None:
        """Replace the password of person ``uid``."""
        with self.admin() as conn:
            ok = conn.modify(
                user_dn(uid), {"userPassword": [(ldap3.MODIFY_REPLACE, [_hash(password)])]}
            )
            self._check(conn, ok, f"set password of {uid}")

    def _modify_member(self, group: str, member: str, op: str) -> None:
        dn = group_dn(group)
        with self.admin() as conn:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectClass"])
            classes = {c.lower() for c in conn.entries[0].objectClass.values}
            attr = "memberUid" if "posixgroup" in classes else "member"
            ok = conn.modify(dn, {attr: [(op, [member])]})
            self._check(conn, ok, f"modify {dn}")

    def add_member(self, group: str, member: str) -> None:
        """Add ``member`` (a uid for posixGroup, a DN for groupOfNames) to ``group``."""
        self._modify_member(group, member, ldap3.MODIFY_ADD)

    def remove_member(self, group: str, member: str) -> None:
        """Remove ``member`` from ``group``."""
        self._modify_member(group, member, ldap3.MODIFY_DELETE)

    @contextlib.contextmanager
    def without_member(self, group: str, member: str) -> Iterator[None]:
        """Remove ``member`` from ``group`` for a ``with`` block, then put it back."""
        self.remove_member(group, member)
        try:
            yield
        finally:
            self.add_member(group, member)


def start_slapd(
    state_dir: Path | str, share_ca_with: Slapd | None = None, *, log_stats: bool = False
) -> Slapd:
    """Create, start and fill a :class:`Slapd` in ``state_dir``.

    ``share_ca_with``: sign the server certificate with that server's CA;
    ``log_stats``: keep slapd's access log (:meth:`Slapd.log_text`).
    """
    os.makedirs(state_dir, exist_ok=True)
    server = Slapd(Path(state_dir), share_ca_with=share_ca_with, log_stats=log_stats)
    server.start()
    server.load_initial_data()
    return server
