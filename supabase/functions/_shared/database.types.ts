export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

export type Database = {
  "public": {
    Tables: {
      "interaction_event_ids": {
        Row: {
          "event_id": string;
          "occurred_at": string;
        };
        ComputedFields: never;
        Insert: {
          "event_id": string;
          "occurred_at": string;
        };
        Update: {
          "event_id"?: string;
          "occurred_at"?: string;
        };
        Relationships: [];
      };
      "rate_limits": {
        Row: {
          "events_recovered_at": string;
          "expires_at": string | null;
          "key": string;
          "requests_recovered_at": string;
        };
        ComputedFields: never;
        Insert: {
          "events_recovered_at": string;
          "expires_at"?: never;
          "key": string;
          "requests_recovered_at": string;
        };
        Update: {
          "events_recovered_at"?: string;
          "expires_at"?: never;
          "key"?: string;
          "requests_recovered_at"?: string;
        };
        Relationships: [];
      };
      "sessions": {
        Row: {
          "anonymous_id": string | null;
          "id": string;
          "interaction_count": number;
          "last_seen_at": string;
          "page_views": number;
          "started_at": string;
          "user_id": string | null;
        };
        ComputedFields: never;
        Insert: {
          "anonymous_id"?: string | null;
          "id": string;
          "interaction_count"?: number;
          "last_seen_at": string;
          "page_views"?: number;
          "started_at": string;
          "user_id"?: string | null;
        };
        Update: {
          "anonymous_id"?: string | null;
          "id"?: string;
          "interaction_count"?: number;
          "last_seen_at"?: string;
          "page_views"?: number;
          "started_at"?: string;
          "user_id"?: string | null;
        };
        Relationships: [];
      };
      "system_errors": {
        Row: {
          "category": string;
          "context": string;
          "error_message": string;
          "error_stack": string | null;
          "id": number;
          "metadata": NonNullable<Json>;
          "timestamp": string;
          "user_id": string | null;
        };
        ComputedFields: never;
        Insert: {
          "category": string;
          "context": string;
          "error_message": string;
          "error_stack"?: string | null;
          "id"?: never;
          "metadata"?: NonNullable<Json>;
          "timestamp"?: string;
          "user_id"?: string | null;
        };
        Update: {
          "category"?: string;
          "context"?: string;
          "error_message"?: string;
          "error_stack"?: string | null;
          "id"?: never;
          "metadata"?: NonNullable<Json>;
          "timestamp"?: string;
          "user_id"?: string | null;
        };
        Relationships: [];
      };
      "user_interactions": {
        Row: {
          "anonymous_id": string | null;
          "client_timestamp": string | null;
          "entity_id": string;
          "entity_type": string;
          "event_id": string;
          "event_type": string;
          "id": number;
          "metadata": NonNullable<Json>;
          "occurred_at": string;
          "received_at": string;
          "session_id": string | null;
          "user_id": string | null;
        };
        ComputedFields: never;
        Insert: {
          "anonymous_id"?: string | null;
          "client_timestamp"?: string | null;
          "entity_id": string;
          "entity_type": string;
          "event_id": string;
          "event_type": string;
          "id"?: never;
          "metadata"?: NonNullable<Json>;
          "occurred_at": string;
          "received_at"?: string;
          "session_id"?: string | null;
          "user_id"?: string | null;
        };
        Update: {
          "anonymous_id"?: string | null;
          "client_timestamp"?: string | null;
          "entity_id"?: string;
          "entity_type"?: string;
          "event_id"?: string;
          "event_type"?: string;
          "id"?: never;
          "metadata"?: NonNullable<Json>;
          "occurred_at"?: string;
          "received_at"?: string;
          "session_id"?: string | null;
          "user_id"?: string | null;
        };
        Relationships: [];
      };
    };
    Views: {
      "daily_engagement": {
        Row: {
          "avg_duration_ms": number | null;
          "avg_engagement_score": number | null;
          "bounce_rate": number | null;
          "day": string | null;
          "sessions": number | null;
          "users": number | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
      "entity_engagement_daily": {
        Row: {
          "day": string | null;
          "entity_id": string;
          "entity_type": string;
          "event_type": string;
          "interactions": number | null;
          "sessions": number | null;
          "visitors": number | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
      "event_funnel": {
        Row: {
          "attendees": number | null;
          "click_to_ticket_click_pct": number | null;
          "clickers": number | null;
          "entity_id": string | null;
          "ticket_clickers": number | null;
          "view_to_attendance_pct": number | null;
          "view_to_click_pct": number | null;
          "view_to_ticket_click_pct": number | null;
          "viewers": number | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
      "preference_signals": {
        Row: {
          "attendances": number | null;
          "attendances_withdrawn": number | null;
          "clicks": number | null;
          "entity_id": string | null;
          "entity_type": string | null;
          "follows": number | null;
          "interests": number | null;
          "interests_withdrawn": number | null;
          "last_signal_at": string | null;
          "likes": number | null;
          "preference_score": number | null;
          "reviews": number | null;
          "shares": number | null;
          "streaming_recent_signals": number | null;
          "streaming_top_signals": number | null;
          "ticket_clicks": number | null;
          "unfollows": number | null;
          "unlikes": number | null;
          "user_id": string | null;
          "views": number | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
      "session_metrics": {
        Row: {
          "anonymous_id": string | null;
          "bounce_rate": number | null;
          "duration_ms": number | null;
          "engagement_score": number | null;
          "interaction_count": number;
          "last_seen_at": string;
          "page_views": number;
          "session_id": string;
          "started_at": string;
          "user_id": string | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
      "user_engagement": {
        Row: {
          "active_days": number | null;
          "avg_engagement_score": number | null;
          "avg_session_duration_ms": number | null;
          "first_seen_at": string | null;
          "interactions": number | null;
          "last_seen_at": string | null;
          "sessions": number | null;
          "user_id": string | null;
        };
        ComputedFields: never;
        Relationships: [];
      };
    };
    Functions: {
      "consume_rate_limit": {
        Args: {
          "p_events": number;
          "p_events_per_minute": number;
          "p_key": string;
          "p_now"?: string;
          "p_requests_per_minute": number;
        };
        Returns: {
          "allowed": boolean;
          "retry_after_s": number;
        }[];
      };
      "engagement_score": {
        Args: { "duration_ms": number; "interaction_count": number };
        Returns: number;
      };
      "event_funnel_since": {
        Args: { "p_since": string };
        Returns: {
          "attendees": number;
          "click_to_ticket_click_pct": number;
          "clickers": number;
          "entity_id": string;
          "ticket_clickers": number;
          "view_to_attendance_pct": number;
          "view_to_click_pct": number;
          "view_to_ticket_click_pct": number;
          "viewers": number;
        }[];
      };
      "ingest_interactions": {
        Args: { "p_context"?: Json; "p_events": Json; "p_rejected"?: Json; "p_user_id": string };
        Returns: {
          "event_id": string;
          "event_index": number;
          "outcome": string;
          "path": string;
          "reason": string;
        }[];
      };
      "interaction_signal_weight": {
        Args: { "event_type": string; "metadata": Json };
        Returns: number;
      };
      "maintain_interaction_partitions": {
        Args: { "p_error_retention"?: string; "p_months_ahead"?: number; "p_retention"?: string };
        Returns: Json;
      };
    };
    Enums: {
      [_ in never]: never;
    };
    CompositeTypes: {
      [_ in never]: never;
    };
  };
};

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">;

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">];

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof (
      & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
      & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"]
    )
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals } ? (
    & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"]
  )[TableName] extends {
    Row: infer R;
  } ? R
  : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R;
    } ? R
    : never
  : never;

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends
    {
      Insert: infer I;
    } ? I
  : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I;
    } ? I
    : never
  : never;

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends
    {
      Update: infer U;
    } ? U
  : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U;
    } ? U
    : never
  : never;

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never,
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never;

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never,
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][
    CompositeTypeName
  ]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never;

export const Constants = {
  "public": {
    Enums: {},
  },
} as const;
