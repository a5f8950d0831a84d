/**
 * Who the page calls the server as: a user signed in with OpenID Connect
 * (authorization code flow with PKCE, by oidc-client-ts, tokens renewed with
 * the refresh token before they expire), else a token pasted into the sign-in
 * dialog. Both are kept in sessionStorage, for this tab only.
 */

import { type User, UserManager, WebStorageStateStore } from 'oidc-client-ts';

/** The page's OpenID Connect client, as the server configures it (PageHandler.oidc_settings). */
export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope: string;
  /** Which of the user's tokens is sent as the bearer. */
  token: 'access' | 'id';
}

export const PASTED_TOKEN_KEY = 'coderemote.token';

/** What `start` found. */
export type SignInState = 'signed-in' | 'pasted' | 'anonymous' | 'redirecting' | 'failed';

export class Credentials {
  private user: User | null = null;
  private readonly manager: UserManager | null;
  /** Why the last sign-in or renewal failed, for the page to show. */
  error = '';

  constructor(
    private readonly oidc: OidcConfig | null,
    redirectUri: string,
    private readonly onChange: () => void = () => undefined
  ) {
    this.manager = oidc
      ? new UserManager({
          authority: oidc.issuer,
          client_id: oidc.clientId,
          redirect_uri: redirectUri,
          post_logout_redirect_uri: redirectUri,
          response_type: 'code',
          scope: oidc.scope,
          // Renewed with the refresh token: the page may not be framed (CSP), so no iframe renewal.
          automaticSilentRenew: true,
          monitorSession: false,
          loadUserInfo: false,
          userStore: new WebStorageStateStore({ store: window.sessionStorage }),
          stateStore: new WebStorageStateStore({ store: window.sessionStorage })
        })
      : null;
    this.manager?.events.addUserLoaded(user => {
      this.user = user;
      this.onChange();
    });
    this.manager?.events.addUserUnloaded(() => {
      this.user = null;
      this.onChange();
    });
    this.manager?.events.addSilentRenewError(error => {
      this.error = `could not renew the sign-in: ${error.message}`;
      this.onChange();
    });
  }

  get oidcAvailable(): boolean {
    return this.manager !== null;
  }

  get issuer(): string {
    return this.oidc?.issuer ?? '';
  }

  /** The bearer token for the next call: the signed-in user's, else a pasted one. */
  token(): string | null {
    if (this.user && this.oidc) {
      const token = this.oidc.token === 'id' ? this.user.id_token : this.user.access_token;
      if (token) {
        return token;
      }
    }
    return sessionStorage.getItem(PASTED_TOKEN_KEY);
  }

  /** Who is signed in, as the provider names them. */
  userName(): string {
    const profile = this.user?.profile;
    if (!profile) {
      return '';
    }
    return String(profile.name ?? profile.preferred_username ?? profile.email ?? profile.sub ?? '');
  }

  /**
   * Finish a sign-in the provider redirected back from, or load the tab's
   * user (renewing it if it expired); with OpenID Connect and neither a user
   * nor a pasted token, go to the provider's sign-in.
   */
  async start(): Promise<SignInState> {
    if (!this.manager) {
      return this.token() ? 'pasted' : 'anonymous';
    }
    const params = new URLSearchParams(location.search);
    if (params.has('state') && (params.has('code') || params.has('error'))) {
      try {
        this.user = await this.manager.signinRedirectCallback();
      } catch (error) {
        this.error = `sign-in failed: ${(error as Error).message}`;
      } finally {
        // The code is good once; a reload must not present it again.
        history.replaceState(history.state, '', location.pathname);
      }
      return this.user ? 'signed-in' : 'failed';
    }
    this.user = await this.manager.getUser();
    if (this.user?.expired) {
      this.user = await this.renew();
    }
    if (this.user) {
      return 'signed-in';
    }
    if (sessionStorage.getItem(PASTED_TOKEN_KEY)) {
      return 'pasted';
    }
    await this.signIn();
    return 'redirecting';
  }

  /** Go to the provider's sign-in page; it comes back to this page. */
  async signIn(): Promise<void> {
    if (!this.manager) {
      throw new Error('no OpenID Connect issuer is configured');
    }
    sessionStorage.removeItem(PASTED_TOKEN_KEY);
    await this.manager.signinRedirect();
  }

  /** Forget the tab's user and pasted token; with OpenID Connect, end the provider's session too. */
  async signOut(): Promise<void> {
    sessionStorage.removeItem(PASTED_TOKEN_KEY);
    if (!this.manager || !this.user) {
      return;
    }
    const idToken = this.user.id_token;
    await this.manager.removeUser();
    try {
      const metadata = await this.manager.metadataService.getMetadata();
      if (metadata.end_session_endpoint) {
        await this.manager.signoutRedirect({ id_token_hint: idToken });
      }
    } catch {
      // No end_session_endpoint: the tab forgets the user, the provider's session stays.
    }
  }

  /** A new token from the refresh token; null when there is none or the provider refuses. */
  private async renew(): Promise<User | null> {
    if (!this.manager || !this.user?.refresh_token) {
      return null;
    }
    try {
      return await this.manager.signinSilent();
    } catch (error) {
      this.error = `could not renew the sign-in: ${(error as Error).message}`;
      return null;
    }
  }
}
